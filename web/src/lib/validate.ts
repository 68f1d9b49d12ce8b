// Client-side checks that mirror the API's rules, so a form says what is wrong before sending. The API checks
// again; its field errors land on the same inputs (fieldErrors in api/errors.ts).

export type Errors<K extends string = string> = Partial<Record<K, string>>;

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
export const E164 = /^\+[1-9]\d{6,14}$/;
const LANGUAGE = /^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$/;

export function validateCredentials(
  v: { email: string; password: string; tenant_name?: string },
  mode: 'login' | 'signup',
): Errors<'email' | 'password' | 'tenant_name'> {
  const e: Errors<'email' | 'password' | 'tenant_name'> = {};
  if (!EMAIL.test(v.email.trim())) e.email = 'Enter a valid email address';
  if (mode === 'login') {
    if (!v.password) e.password = 'Enter your password';
  } else {
    if (v.password.length < 8) e.password = 'Use at least 8 characters';
    else if (v.password.length > 256) e.password = 'Use at most 256 characters';
    if (!v.tenant_name?.trim()) e.tenant_name = 'Name your business';
    else if (v.tenant_name.trim().length > 200) e.tenant_name = 'At most 200 characters';
  }
  return e;
}

export interface AgentForm {
  agent_name: string;
  language: string;
  greeting: string;
  system_prompt: string;
  transfer_number: string;
  endpointing_ms: number;
  min_interruption_ms: number;
  silence_prompt_s: number;
  max_duration_s: number;
}

function range(e: Errors, key: string, v: number, min: number, max: number, unit: string): void {
  if (!Number.isInteger(v) || v < min || v > max) e[key] = `Between ${min} and ${max} ${unit}`;
}

/** The Agent page's main form (limits as in the service's settings schema). */
export function validateAgent(v: AgentForm): Errors {
  const e: Errors = {};
  if (!v.agent_name.trim()) e.agent_name = 'Give your agent a name';
  else if (v.agent_name.trim().length > 100) e.agent_name = 'At most 100 characters';
  if (!LANGUAGE.test(v.language)) e.language = 'A language tag such as en or en-US';
  if (v.greeting.length > 1000) e.greeting = 'At most 1,000 characters';
  if (v.system_prompt.length > 20_000) e.system_prompt = 'At most 20,000 characters';
  if (v.transfer_number && !E164.test(v.transfer_number)) e['call.transfer_number'] = 'An E.164 number such as +14155550100';
  range(e, 'call.endpointing_ms', v.endpointing_ms, 100, 5000, 'ms');
  range(e, 'call.min_interruption_ms', v.min_interruption_ms, 0, 3000, 'ms');
  range(e, 'call.silence_prompt_s', v.silence_prompt_s, 3, 600, 's');
  range(e, 'call.max_duration_s', v.max_duration_s, 30, 14_400, 's');
  return e;
}

export const isValid = (e: Errors): boolean => Object.keys(e).length === 0;
