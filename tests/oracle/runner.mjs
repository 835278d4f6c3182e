// Oracle runner: evaluates IAM authorization cases with the independent evaluator
// @cloud-copilot/iam-simulate (AGPL-3.0), installed by tests/oracle/install.sh into a scratch
// directory given by ORACLE_DIR. This file only drives it as a separate process; no code or
// test vectors of it live in this repository.
//
// Protocol: JSON Lines. One case per stdin line, one result per stdout line, in input order:
//   {"id": ..., "decision": "allowed" | "explicitDeny" | "implicitDeny"}
//   {"id": ..., "error": "<message>"}            (oracle or runner rejects the case)
// Blank lines are skipped. See tests/oracle/NOTES.md for the case schema and semantics.
//
// Env:
//   ORACLE_DIR      directory holding node_modules/@cloud-copilot/* (required)
//   ORACLE_LENIENT  "1": do not reject cases the oracle would silently alter (context keys it drops
//                   for the action/resource type, several values for a single-valued key); evaluate
//                   them anyway and add "ignoredContextKeys" / "truncatedContextKeys" to the output.
//   ORACLE_EXPLAIN  "1": add "explain" (the oracle's full analysis) to every result (slow; debugging).
//   ORACLE_NO_MEMO  "1": turn off the two behaviour-neutral speed-ups below.
// Case -> oracle request: resource account = case.resourceAccount, else the resource ARN's account
// field, else the principal's account (an ARN account that contradicts resourceAccount is an error).
// SCP levels -> serviceControlPolicies (root first); no RCPs; Strict mode. Context values: arrays for
// the oracle's ArrayOf* keys, a single string otherwise. A "*" request resource is accepted only for
// wildcard-only actions (e.g. ec2:DescribeInstances).
// Args:
//   --versions      print {"iam-simulate": ..., ...} and exit.

import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

const oracleDir = process.env.ORACLE_DIR;
if (!oracleDir) {
  process.stderr.write('runner.mjs: ORACLE_DIR is not set (run tests/oracle/install.sh DIR first)\n');
  process.exit(2);
}
const req = createRequire(join(resolve(oracleDir), 'package.json'));
const PKGS = ['iam-simulate', 'iam-data', 'iam-policy', 'iam-utils'];

if (process.argv.includes('--versions')) {
  const out = {};
  for (const p of PKGS) {
    const file = join(resolve(oracleDir), 'node_modules', '@cloud-copilot', p, 'package.json');
    out[p] = JSON.parse(readFileSync(file, 'utf8')).version;
  }
  process.stdout.write(JSON.stringify(out) + '\n');
  process.exit(0);
}

let sim;
try {
  sim = req('@cloud-copilot/iam-simulate');
} catch (e) {
  process.stderr.write(`runner.mjs: cannot load @cloud-copilot/iam-simulate from ${oracleDir}: ${e.message}\n`);
  process.exit(2);
}
const { runSimulation, typeForContextKey, isConditionKeyArray } = sim;

// Speed-up, behaviour-neutral: memoise the oracle's pure lookup "which resource types of this action
// does this ARN match" (about 40% of its CPU time). It is called through the CommonJS exports
// object, so replacing the export is seen by its callers. Skipped (with a note on stderr) if a future
// version lays its files out differently; ORACLE_NO_MEMO=1 turns it off.
if (process.env.ORACLE_NO_MEMO !== '1') {
  try {
    // By file path: the package's "exports" hides subpaths. Same file => same module instance.
    const rt = req(join(resolve(oracleDir), 'node_modules/@cloud-copilot/iam-simulate/dist/cjs/simulation_engine/resourceTypes.js'));
    const original = rt.getResourceTypesForAction;
    if (typeof original !== 'function') throw new Error('getResourceTypesForAction not found');
    const memo = new Map();
    rt.getResourceTypesForAction = (service, action, resource) => {
      const key = `${service}\u0000${action}\u0000${resource}`;
      let p = memo.get(key);
      if (p === undefined) {
        if (memo.size > 100000) memo.clear();
        p = original(service, action, resource);
        memo.set(key, p);
        p.catch(() => memo.delete(key));
      }
      return p;
    };
  } catch (e) {
    process.stderr.write(`runner.mjs: not memoising resource-type lookups (${e.message})\n`);
  }
  // Same idea: iam-policy compares operator names with String#localeCompare(.., undefined,
  // {sensitivity: 'accent'}), which builds a collator per call (~15% of CPU). A cached
  // Intl.Collator with the same locale and options gives the same answers.
  try {
    const u = req(join(resolve(oracleDir), 'node_modules/@cloud-copilot/iam-policy/dist/cjs/utils.js'));
    if (typeof u.caseInsensitiveEquals !== 'function' || typeof u.caseInsensitiveEndsWith !== 'function') {
      throw new Error('caseInsensitiveEquals not found');
    }
    const collator = new Intl.Collator(undefined, { sensitivity: 'accent' });
    const eq = (a, b) => collator.compare(a, b) === 0;
    u.caseInsensitiveEquals = eq;
    u.caseInsensitiveEndsWith = (value, suffix) => eq(value.slice(suffix.length * -1), suffix);
  } catch (e) {
    process.stderr.write(`runner.mjs: not caching the case-insensitive collator (${e.message})\n`);
  }
}

const LENIENT = process.env.ORACLE_LENIENT === '1';
const EXPLAIN = process.env.ORACLE_EXPLAIN === '1';

const DECISIONS = {
  Allowed: 'allowed',
  ExplicitlyDenied: 'explicitDeny',
  ImplicitlyDenied: 'implicitDeny'
};

class CaseError extends Error {}

function accountOfArn(arn) {
  if (typeof arn !== 'string') return undefined;
  const parts = arn.split(':');
  if (parts.length < 6 || parts[0] !== 'arn') return undefined;
  return parts[4] || undefined;
}

function isPolicy(p) {
  return p !== null && typeof p === 'object' && !Array.isArray(p);
}

// Memoised key -> declared type (e.g. "String", "ArrayOfString"); null if the oracle knows no such key.
const keyTypeCache = new Map();
async function keyType(key) {
  const lc = key.toLowerCase();
  if (keyTypeCache.has(lc)) return keyTypeCache.get(lc);
  let t = null;
  try {
    t = await typeForContextKey(lc);
  } catch {
    t = null;
  }
  keyTypeCache.set(lc, t);
  return t;
}

async function buildSimulation(c) {
  if (typeof c.principal !== 'string' || c.principal === '') throw new CaseError('case.principal must be a non-empty string');
  if (typeof c.action !== 'string') throw new CaseError('case.action must be a string');
  if (typeof c.resource !== 'string') throw new CaseError('case.resource must be a string');
  // The oracle decides same-account vs cross-account ONLY from resource.accountId (it never reads the
  // account field of the resource ARN). So: explicit resourceAccount, else the ARN's account field,
  // else (S3 buckets/objects, public AMIs...) the principal's account.
  const principalAccount = accountOfArn(c.principal);
  const arnAccount = accountOfArn(c.resource);
  if (c.resourceAccount !== undefined && c.resourceAccount !== null) {
    if (typeof c.resourceAccount !== 'string' || c.resourceAccount === '') throw new CaseError('case.resourceAccount must be a non-empty string');
    if (arnAccount !== undefined && arnAccount !== c.resourceAccount) {
      throw new CaseError(`case.resourceAccount ${c.resourceAccount} contradicts the account in the resource ARN (${arnAccount})`);
    }
  }
  const resourceAccount = c.resourceAccount ?? arnAccount ?? principalAccount;
  if (typeof resourceAccount !== 'string' || resourceAccount === '') {
    throw new CaseError('cannot determine the resource account (no resourceAccount, no account in the resource ARN or principal)');
  }

  const ctx = c.context ?? {};
  if (!isPolicy(ctx)) throw new CaseError('case.context must be an object');
  const contextVariables = {};
  const truncated = [];
  const seen = new Set();
  for (const [key, values] of Object.entries(ctx)) {
    if (!Array.isArray(values) || values.some((v) => typeof v !== 'string')) {
      throw new CaseError(`context value for ${key} must be an array of strings`);
    }
    if (seen.has(key.toLowerCase())) throw new CaseError(`context key ${key} given twice (keys are case-insensitive)`);
    seen.add(key.toLowerCase());
    const t = await keyType(key);
    if (t !== null && !isConditionKeyArray(t)) {
      // Single-valued key: the oracle would keep only values[0].
      if (values.length === 0) throw new CaseError(`context key ${key} is single-valued (${t}) and has no value`);
      if (values.length > 1) {
        if (!LENIENT) throw new CaseError(`context key ${key} is single-valued (${t}) but has ${values.length} values; the oracle would keep only the first`);
        truncated.push(key);
      }
      contextVariables[key] = values[0];
    } else {
      contextVariables[key] = values;
    }
  }

  const identityPolicies = (c.identityPolicies ?? []).map((policy, i) => ({ name: `identity-${i}`, policy }));
  const simulation = {
    request: {
      principal: c.principal,
      action: c.action,
      resource: { resource: c.resource, accountId: resourceAccount },
      contextVariables
    },
    identityPolicies,
    serviceControlPolicies: (c.scps ?? []).map((level, i) => {
      if (!Array.isArray(level)) throw new CaseError(`scps[${i}] must be an array of policies`);
      return {
        orgIdentifier: `level-${i}`,
        policies: level.map((policy, j) => ({ name: `scp-${i}-${j}`, policy }))
      };
    }),
    resourceControlPolicies: []
  };
  if (c.boundary !== undefined && c.boundary !== null) {
    simulation.permissionBoundaryPolicies = [{ name: 'boundary', policy: c.boundary }];
  }
  if (c.resourcePolicy !== undefined && c.resourcePolicy !== null) {
    simulation.resourcePolicy = c.resourcePolicy;
  }
  return { simulation, truncated };
}

function errorMessage(errors) {
  const { message, ...rest } = errors ?? {};
  const detail = Object.keys(rest).length > 0 ? ' ' + JSON.stringify(rest) : '';
  return `${message ?? 'unknown error'}${detail}`;
}

async function evaluate(c) {
  const { simulation, truncated } = await buildSimulation(c);
  const result = await runSimulation(simulation, { simulationMode: 'Strict' });
  if (result.resultType === 'error') return { error: errorMessage(result.errors) };
  if (result.resultType === 'wildcard') {
    // A "*" in the request resource of an action that has resource types: the oracle then answers
    // "could some resource matching this pattern be allowed", not a single request. Only a plain "*"
    // for wildcard-only actions (no resource types, e.g. ec2:DescribeInstances) is a single request.
    return { error: 'wildcard request resource: the oracle evaluates it as a pattern over many resources, not one request' };
  }
  if (result.resultType !== 'single') return { error: `unexpected resultType ${result.resultType}` };
  const ignored = result.result.ignoredContextKeys ?? [];
  if (ignored.length > 0 && !LENIENT) {
    return {
      error: `oracle drops context keys that do not apply to ${c.action} on this resource type: ${ignored.join(', ')}`
    };
  }
  const decision = DECISIONS[result.overallResult];
  if (!decision) return { error: `unexpected result ${result.overallResult}` };
  const out = { decision };
  if (LENIENT && ignored.length > 0) out.ignoredContextKeys = ignored;
  if (LENIENT && truncated.length > 0) out.truncatedContextKeys = truncated;
  if (EXPLAIN) out.explain = result.result;
  return out;
}

function safeStringify(obj) {
  const seen = new WeakSet();
  return JSON.stringify(obj, (k, v) => {
    if (typeof v === 'object' && v !== null) {
      if (seen.has(v)) return '[circular]';
      seen.add(v);
      // Policy/statement objects of the oracle: show their raw JSON only.
      if (typeof v.toJSON !== 'function' && typeof v.value === 'function' && typeof v.statements === 'function') {
        return '[policy]';
      }
    }
    return v;
  });
}

const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of rl) {
  if (line.trim() === '') continue;
  let id = null;
  let out;
  try {
    const c = JSON.parse(line);
    if (!isPolicy(c)) throw new CaseError('case must be a JSON object');
    id = c.id ?? null;
    out = await evaluate(c);
  } catch (e) {
    out = { error: e instanceof CaseError || e instanceof SyntaxError ? e.message : `oracle threw: ${e?.message ?? e}` };
  }
  // Pipes are written synchronously on Linux, so results appear line by line, in order.
  process.stdout.write((EXPLAIN ? safeStringify({ id, ...out }) : JSON.stringify({ id, ...out })) + '\n');
}
