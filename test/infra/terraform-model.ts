// terraform/*.tf as data, for the infrastructure tests. Terraform cannot download providers here (no
// network), so `terraform validate` is out of reach: every .tf file is parsed with a real HCL parser
// (@cdktf/hcl2json). Besides the parse, this holds the little evaluation the permission contract
// needs: terraform strings with ${var.*}, ${local.*} and resource attributes resolved for a scenario,
// `count` conditions, and the IAM condition expressions (a small subset of CEL) of conditional grants.
import fs from 'node:fs';
import path from 'node:path';
import { parse } from '@cdktf/hcl2json';

export const ROOT = path.resolve(import.meta.dirname, '../..');
export const TERRAFORM = path.join(ROOT, 'terraform');

export type Block = Record<string, unknown>;
/** hcl2json's shape: resource -> type -> name -> [block]; blocks nest as arrays of objects. */
export type Named = Record<string, Record<string, Block[]>>;

export interface Parsed {
  files: Record<string, Block>;
  resources: Named;
  data: Named;
  variables: Record<string, Block>;
  outputs: Record<string, Block>;
  locals: Record<string, unknown>;
}

function mergeNamed(into: Named, from: unknown): void {
  for (const [type, byName] of Object.entries((from ?? {}) as Named)) {
    into[type] ??= {};
    for (const [name, blocks] of Object.entries(byName)) {
      if (into[type][name] !== undefined) throw new Error(`${type}.${name} is declared twice`);
      into[type][name] = blocks;
    }
  }
}

export async function parseTerraform(dir = TERRAFORM): Promise<Parsed> {
  const parsed: Parsed = { files: {}, resources: {}, data: {}, variables: {}, outputs: {}, locals: {} };
  const names = fs.readdirSync(dir).filter((f) => f.endsWith('.tf'));
  for (const name of names) {
    const json = (await parse(name, fs.readFileSync(path.join(dir, name), 'utf8'))) as Block;
    parsed.files[name] = json;
    mergeNamed(parsed.resources, json.resource);
    mergeNamed(parsed.data, json.data);
    for (const [v, blocks] of Object.entries((json.variable ?? {}) as Record<string, Block[]>))
      parsed.variables[v] = blocks[0]!;
    for (const [o, blocks] of Object.entries((json.output ?? {}) as Record<string, Block[]>))
      parsed.outputs[o] = blocks[0]!;
    for (const locals of (json.locals ?? []) as Block[]) Object.assign(parsed.locals, locals);
  }
  return parsed;
}

/** A deployment: values for the variables, the rest from their defaults. */
export interface Scenario {
  name: string;
  vars: Record<string, unknown>;
}

export function variable(tf: Parsed, scenario: Scenario, name: string): unknown {
  if (name in scenario.vars) return scenario.vars[name];
  const declared = tf.variables[name];
  if (declared === undefined) throw new Error(`var.${name} is not declared`);
  return declared.default;
}

/**
 * TEXT with its ${var.X}, ${local.X} and ${google_T.N.attr} replaced by their values in SCENARIO,
 * recursively. Anything else in ${...} throws: the tests must not guess what they cannot evaluate.
 */
export function resolve(tf: Parsed, scenario: Scenario, text: string, depth = 0): string {
  if (depth > 10) throw new Error(`too deep resolving ${text}`);
  const joined = JOIN.exec(text);
  if (joined) return joinOf(tf, scenario, unescape(joined[1]!), joined[2]!, depth);
  // `${coalesce(var.X, "TEMPLATE")}` (the whole text): the variable when set, else the template.
  const coalesced = COALESCE.exec(text);
  if (coalesced) {
    const value = variable(tf, scenario, coalesced[1]!);
    if (value !== null && value !== undefined && value !== '') return String(value);
    return resolve(tf, scenario, unescape(coalesced[2]!), depth + 1);
  }
  return text.replace(/\$\{([^}]+)\}/g, (whole, inner: string) => {
    const expr = inner.trim();
    let m = /^var\.(\w+)$/.exec(expr);
    if (m) return String(variable(tf, scenario, m[1]!));
    m = /^local\.(\w+)$/.exec(expr);
    if (m) {
      const value = tf.locals[m[1]!];
      if (typeof value !== 'string') throw new Error(`local.${m[1]} is not a string: ${whole}`);
      return resolve(tf, scenario, value, depth + 1);
    }
    m = /^(google_\w+)\.(\w+)\.(\w+)$/.exec(expr);
    if (m) {
      const value = tf.resources[m[1]!]?.[m[2]!]?.[0]?.[m[3]!];
      if (typeof value !== 'string') throw new Error(`cannot resolve ${whole}`);
      return resolve(tf, scenario, value, depth + 1);
    }
    throw new Error(`cannot resolve ${whole} in ${text}`);
  });
}

// Lists, the few forms the .tf files use to make one string of many zones: `${join("SEP", LIST)}`
// and `${join("SEP", [for X in LIST : "TEMPLATE"])}` (the whole text), where LIST is var.X,
// local.X, [A, B] or concat(LIST, LIST).
const COALESCE = /^\$\{coalesce\(var\.(\w+), "((?:[^"\\]|\\.)*)"\)\}$/s;
const JOIN = /^\$\{join\("((?:[^"\\]|\\.)*)", (.+)\)\}$/s;
const FOR = /^\[for (\w+) in (.+?) : "((?:[^"\\]|\\.)*)"\]$/s;

function joinOf(tf: Parsed, scenario: Scenario, separator: string, list: string, depth: number): string {
  const each = FOR.exec(list.trim());
  if (!each) return listOf(tf, scenario, list).join(separator);
  const [, name, items, template] = each as unknown as [string, string, string, string];
  return listOf(tf, scenario, items)
    .map((item) => resolve(tf, scenario, unescape(template).replaceAll(`\${${name}}`, item), depth + 1))
    .join(separator);
}

/** The strings of a list expression in SCENARIO. */
export function listOf(tf: Parsed, scenario: Scenario, expr: string): string[] {
  const e = expr
    .trim()
    .replace(/^\$\{(.*)\}$/s, '$1')
    .trim();
  let m = /^var\.(\w+)$/.exec(e);
  if (m) {
    const value = variable(tf, scenario, m[1]!);
    if (!Array.isArray(value)) throw new Error(`var.${m[1]} is not a list`);
    return value.map(String);
  }
  m = /^local\.(\w+)$/.exec(e);
  if (m) return listOf(tf, scenario, String(tf.locals[m[1]!]));
  m = /^concat\((.*)\)$/s.exec(e);
  if (m) return topLevel(m[1]!).flatMap((part) => listOf(tf, scenario, part));
  m = /^\[(.*)\]$/s.exec(e);
  if (m) return topLevel(m[1]!).map((item) => scalar(tf, scenario, item));
  throw new Error(`a list the tests cannot evaluate: ${expr}`);
}

function scalar(tf: Parsed, scenario: Scenario, expr: string): string {
  const e = expr.trim();
  const quoted = /^"((?:[^"\\]|\\.)*)"$/.exec(e);
  if (quoted) return resolve(tf, scenario, unescape(quoted[1]!));
  if (/^(var|local)\.\w+$/.test(e)) return resolve(tf, scenario, `\${${e}}`);
  throw new Error(`a list item the tests cannot evaluate: ${expr}`);
}

/** TEXT split at its commas outside brackets, parentheses and strings. */
function topLevel(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '\\') i++;
      else if (c === '"') quoted = false;
    } else if (c === '"') quoted = true;
    else if (c === '(' || c === '[') depth++;
    else if (c === ')' || c === ']') depth--;
    else if (c === ',' && depth === 0) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  const last = text.slice(start);
  return last.trim() === '' ? parts : [...parts, last];
}

/** An HCL string literal's text: \" and \\ as the characters they stand for. */
function unescape(text: string): string {
  return text.replace(/\\(.)/g, '$1');
}

/** The truth of a terraform condition of the few forms the .tf files use for count. */
function truthy(tf: Parsed, scenario: Scenario, expr: string): boolean {
  const e = expr
    .trim()
    .replace(/^\$\{(.*)\}$/s, '$1')
    .trim();
  let m = /^var\.(\w+)$/.exec(e);
  if (m) return variable(tf, scenario, m[1]!) === true;
  m = /^local\.(\w+)$/.exec(e);
  if (m) return truthy(tf, scenario, String(tf.locals[m[1]!]));
  m = /^var\.(\w+) != ""$/.exec(e);
  if (m) return variable(tf, scenario, m[1]!) !== '';
  m = /^var\.(\w+) == var\.(\w+)$/.exec(e);
  if (m) return variable(tf, scenario, m[1]!) === variable(tf, scenario, m[2]!);
  throw new Error(`a condition the tests cannot evaluate: ${expr}`);
}

/** Whether BLOCK exists in SCENARIO: no count, or a count of the form `${COND ? 1 : 0}`. */
export function exists(tf: Parsed, scenario: Scenario, block: Block): boolean {
  if (block.count === undefined) return true;
  const m = /^\$\{(.+) \? 1 : 0\}$/s.exec(String(block.count));
  if (!m) throw new Error(`a count the tests cannot evaluate: ${String(block.count)}`);
  return truthy(tf, scenario, m[1]!);
}

// ---------------------------------------------------------------------------------------------------
// IAM condition expressions: the subset of CEL the grants use. resource.type, resource.name and
// resource.service; string literals; == and !=; .startsWith("..."); &&, ||, ! and parentheses.
// https://cloud.google.com/iam/docs/conditions-overview#cel

export interface ConditionResource {
  type: string;
  name: string;
  service?: string;
}

type Token = { kind: 'str'; value: string } | { kind: 'id'; value: string } | { kind: 'op'; value: string };

function tokenize(expr: string): Token[] {
  const tokens: Token[] = [];
  const re = /\s*(?:"((?:[^"\\]|\\.)*)"|([A-Za-z_][\w.]*)|(==|!=|&&|\|\||[()!,]))/gy;
  let m: RegExpExecArray | null;
  let at = 0;
  while (at < expr.length && (m = re.exec(expr)) !== null) {
    if (m[1] !== undefined) tokens.push({ kind: 'str', value: m[1].replace(/\\(.)/g, '$1') });
    else if (m[2] !== undefined) tokens.push({ kind: 'id', value: m[2] });
    else tokens.push({ kind: 'op', value: m[3]! });
    at = re.lastIndex;
  }
  if (expr.slice(at).trim() !== '') throw new Error(`cannot read the condition at: ${expr.slice(at)}`);
  return tokens;
}

/** Whether the condition EXPR admits a request on RESOURCE. */
export function evaluateCondition(expr: string, resource: ConditionResource): boolean {
  const tokens = tokenize(expr);
  let i = 0;
  const peek = () => tokens[i];
  const take = (value?: string): Token => {
    const t = tokens[i++];
    if (t === undefined || (value !== undefined && t.value !== value))
      throw new Error(`condition ${expr}: expected ${value ?? 'more'} at token ${i}`);
    return t;
  };
  const attribute = (id: string): string => {
    const value = { 'resource.type': resource.type, 'resource.name': resource.name }[id];
    if (id === 'resource.service') return resource.service ?? resource.type.split('/')[0]!;
    if (value === undefined) throw new Error(`condition ${expr}: unknown attribute ${id}`);
    return value;
  };
  const operand = (): string => {
    const t = take();
    if (t.kind === 'str') return t.value;
    if (t.kind === 'id') return attribute(t.value);
    throw new Error(`condition ${expr}: unexpected ${t.value}`);
  };
  const primary = (): boolean => {
    const t = peek();
    if (t?.kind === 'op' && t.value === '!') {
      take('!');
      return !primary();
    }
    if (t?.kind === 'op' && t.value === '(') {
      take('(');
      const value = or();
      take(')');
      return value;
    }
    if (t?.kind === 'id' && t.value.endsWith('.startsWith')) {
      take();
      take('(');
      const prefix = operand();
      take(')');
      return attribute(t.value.slice(0, -'.startsWith'.length)).startsWith(prefix);
    }
    if (t?.kind === 'id' && t.value.endsWith('.endsWith')) {
      take();
      take('(');
      const suffix = operand();
      take(')');
      return attribute(t.value.slice(0, -'.endsWith'.length)).endsWith(suffix);
    }
    const left = operand();
    const op = take().value;
    const right = operand();
    if (op === '==') return left === right;
    if (op === '!=') return left !== right;
    throw new Error(`condition ${expr}: unknown operator ${op}`);
  };
  const and = (): boolean => {
    let value = primary();
    while (peek()?.value === '&&') {
      take('&&');
      const right = primary();
      value = value && right;
    }
    return value;
  };
  const or = (): boolean => {
    let value = and();
    while (peek()?.value === '||') {
      take('||');
      const right = and();
      value = value || right;
    }
    return value;
  };
  const value = or();
  if (i !== tokens.length) throw new Error(`condition ${expr}: unexpected ${tokens[i]!.value}`);
  return value;
}
