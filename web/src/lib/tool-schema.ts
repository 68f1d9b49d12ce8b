// The check of a tool's `parameters` as typed in the JSON editor, mirroring the service's subset
// (src/lib/json-schema.ts): type, properties, required, enum, description, items; at most 5 levels. Each problem
// names its place ("properties.date.type") so the editor can say where it is.

export interface SchemaIssue {
  path: string;
  message: string;
}

const MAX_DEPTH = 5;
const TYPES = ['string', 'number', 'integer', 'boolean', 'array', 'object'];
const ALLOWED: Record<string, string[]> = {
  string: ['type', 'description', 'enum'],
  number: ['type', 'description', 'enum'],
  integer: ['type', 'description', 'enum'],
  boolean: ['type', 'description'],
  array: ['type', 'description', 'items'],
  object: ['type', 'description', 'properties', 'required'],
};
const PROPERTY_NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const join = (path: string, key: string) => (path ? `${path}.${key}` : key);

function checkNode(node: unknown, path: string, depth: number, issues: SchemaIssue[]): void {
  if (depth > MAX_DEPTH) {
    issues.push({ path, message: `nested more than ${MAX_DEPTH} levels deep` });
    return;
  }
  if (!isObject(node) || typeof node.type !== 'string' || !TYPES.includes(node.type)) {
    issues.push({ path: join(path, 'type'), message: `must be one of ${TYPES.join(', ')}` });
    return;
  }
  for (const key of Object.keys(node)) {
    if (!ALLOWED[node.type]!.includes(key)) issues.push({ path: join(path, key), message: `is not allowed for type ${node.type}` });
  }
  if ('description' in node && (typeof node.description !== 'string' || node.description.length > 1000)) {
    issues.push({ path: join(path, 'description'), message: 'must be text of at most 1000 characters' });
  }
  if ('enum' in node) {
    const want = node.type === 'string' ? 'string' : 'number';
    if (!Array.isArray(node.enum) || node.enum.length === 0 || node.enum.length > 100 || node.enum.some((v) => typeof v !== want)) {
      issues.push({ path: join(path, 'enum'), message: `must be a list of 1 to 100 ${want}s` });
    }
  }
  if (node.type === 'array') {
    if (!('items' in node)) issues.push({ path: join(path, 'items'), message: 'is required for an array' });
    else checkNode(node.items, join(path, 'items'), depth + 1, issues);
  }
  if (node.type === 'object') {
    if (!isObject(node.properties)) {
      issues.push({ path: join(path, 'properties'), message: 'must be an object of argument schemas' });
      return;
    }
    const names = Object.keys(node.properties);
    if (names.length > 50) issues.push({ path: join(path, 'properties'), message: 'at most 50 properties' });
    for (const name of names) {
      const at = join(join(path, 'properties'), name);
      if (!PROPERTY_NAME.test(name))
        issues.push({ path: at, message: 'must be 1 to 64 letters, digits, _ . or -, starting with a letter or _' });
      checkNode(node.properties[name], at, depth + 1, issues);
    }
    if ('required' in node) {
      if (!Array.isArray(node.required)) issues.push({ path: join(path, 'required'), message: 'must be a list of property names' });
      else
        node.required.forEach((r, i) => {
          if (typeof r !== 'string' || !names.includes(r)) {
            issues.push({ path: join(path, `required.${i}`), message: `"${String(r)}" is not one of the properties` });
          }
        });
    }
  }
}

/** Parses the editor's text and checks it: the schema when it is valid, else every problem found. */
export function checkToolParameters(text: string): { value?: Record<string, unknown>; issues: SchemaIssue[] } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    return { issues: [{ path: '', message: `not valid JSON: ${err instanceof Error ? err.message : String(err)}` }] };
  }
  const issues: SchemaIssue[] = [];
  if (!isObject(parsed) || parsed.type !== 'object') {
    issues.push({ path: 'type', message: 'the parameters must be a schema of type "object"' });
    return { issues };
  }
  checkNode(parsed, '', 1, issues);
  return issues.length ? { issues } : { value: parsed, issues };
}
