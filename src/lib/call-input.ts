// What a tenant attaches to a call it starts (POST /api/v1/calls, POST /api/v1/calls/web): `metadata`, a small JSON
// object stored on the call and returned with it (the call view, call.started and call.ended), and `variables`,
// plain-text values substituted into the agent's prompt and greeting for that call (`{{first_name}}`). Both bounded:
// they are stored per call and sent in every webhook event about it.
import { z } from 'zod';

export const METADATA_MAX_KEYS = 50;
export const METADATA_KEY_MAX_CHARS = 64;
/** One value, as JSON. */
export const METADATA_VALUE_MAX_CHARS = 1_000;
/** The whole object, as JSON. */
export const METADATA_MAX_CHARS = 16_000;
export const VARIABLES_MAX_KEYS = 50;
export const VARIABLE_VALUE_MAX_CHARS = 1_000;

const jsonChars = (v: unknown) => JSON.stringify(v)?.length ?? 0;

/** The tenant's own data about the call (a CRM id, a campaign): any JSON values, bounded in count and size. */
export const callMetadataSchema = z
  .record(z.string().min(1).max(METADATA_KEY_MAX_CHARS), z.unknown())
  .refine((m) => Object.keys(m).length <= METADATA_MAX_KEYS, `at most ${METADATA_MAX_KEYS} keys`)
  .refine(
    (m) => Object.values(m).every((v) => jsonChars(v) <= METADATA_VALUE_MAX_CHARS),
    `each value at most ${METADATA_VALUE_MAX_CHARS} characters as JSON`,
  )
  .refine((m) => jsonChars(m) <= METADATA_MAX_CHARS, `at most ${METADATA_MAX_CHARS} characters as JSON`)
  .describe(
    `Your data about the call, returned with it and in its call.started and call.ended webhook events: at most ` +
      `${METADATA_MAX_KEYS} keys of up to ${METADATA_KEY_MAX_CHARS} characters, each value at most ${METADATA_VALUE_MAX_CHARS} characters as JSON.`,
  );
export type CallMetadata = z.output<typeof callMetadataSchema>;

/** A placeholder's name: what may stand between `{{` and `}}`. */
const VARIABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

export const callVariablesSchema = z
  .record(
    z.string().regex(VARIABLE_NAME, 'must be a letter or _ followed by up to 63 letters, digits or _'),
    z.string().max(VARIABLE_VALUE_MAX_CHARS),
  )
  .refine((v) => Object.keys(v).length <= VARIABLES_MAX_KEYS, `at most ${VARIABLES_MAX_KEYS} variables`)
  .describe(
    'Values for `{{name}}` placeholders in the agent’s prompt and greeting, for this call: plain text, inserted as is ' +
      '(a value holding `{{...}}` is not expanded again). A placeholder with no value here is left as written.',
  );
export type CallVariables = z.output<typeof callVariablesSchema>;

const PLACEHOLDER = /\{\{\s*([A-Za-z_][A-Za-z0-9_]{0,63})\s*\}\}/g;

/**
 * The text with each `{{name}}` (spaces allowed inside the braces) replaced by its variable's value. One pass over
 * the template: a value is never read for placeholders, so a caller-supplied value cannot expand another. Unknown
 * names are left as written, so a prompt that mentions braces, or a call started without variables, reads as before.
 */
export function fillVariables<T extends string | null>(template: T, variables: CallVariables | undefined): T {
  if (template === null || !variables || !Object.keys(variables).length) return template;
  return template.replace(PLACEHOLDER, (whole, name: string) => (Object.hasOwn(variables, name) ? variables[name]! : whole)) as T;
}
