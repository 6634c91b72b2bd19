// The permission contract: terraform's IAM grants against the permission table (permissions.ts).
// For every call in the table, in every scenario below, the call's caller must be granted a role
// holding the call's permission on the call's resource or on the project, under a condition (if the
// grant has one) that admits the resource; and by exactly the grant the table names. Grants must not
// be project-wide without a condition unless PROJECT_WIDE_ALLOWED says why, no role may be owner,
// editor or an admin role, every grant must be needed by some call, and every permission of a custom
// role too. The second half removes each grant the table relies on in turn and shows the check then
// reports the calls it covered.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CALLS, MEMBERS, PREDEFINED_ROLES, PROJECT_WIDE_ALLOWED, type Call } from './permissions.ts';
import {
  evaluateCondition,
  exists,
  parseTerraform,
  resolve,
  ROOT,
  type Block,
  type Parsed,
  type Scenario,
} from './terraform-model.ts';

const TF = await parseTerraform();

const BASE = {
  project_id: 'demo-project',
  region: 'europe-west1',
  zone: 'europe-west1-b',
  dispatcher_image: 'europe-west1-docker.pkg.dev/demo-project/pipeline/dispatcher:1',
  worker_image: 'europe-west1-docker.pkg.dev/demo-project/pipeline/worker:1',
};
const SCENARIOS: Scenario[] = [
  { name: 'defaults (no external IP, Cloud NAT, cos-cloud)', vars: BASE },
  { name: 'external IPs', vars: { ...BASE, vm_external_ip: true, vm_nat: false } },
  {
    name: 'an image baked into the project',
    vars: { ...BASE, vm_image_project: 'demo-project', vm_image_family: 'pipeline-worker-cos' },
  },
];

function applies(tf: Parsed, scenario: Scenario, call: Call): boolean {
  const project = resolve(tf, scenario, '${var.vm_image_project}');
  switch (call.when ?? 'always') {
    case 'always':
      return true;
    case 'external-ip':
      return resolve(tf, scenario, '${var.vm_external_ip}') === 'true';
    case 'public-image':
      return project === 'cos-cloud';
    case 'own-image':
      return project === resolve(tf, scenario, '${var.project_id}');
  }
}

interface Grant {
  address: string;
  member: string;
  role: string;
  /** The terraform resource it is granted on, or `project`. */
  target: string;
  condition?: string;
}

const IAM_MEMBER = /^google_\w+_iam_member$/;
// The argument of each IAM resource that names what it is granted on.
const TARGET_ARGUMENT: Record<string, string> = {
  google_storage_bucket_iam_member: 'bucket',
  google_pubsub_topic_iam_member: 'topic',
  google_pubsub_subscription_iam_member: 'subscription',
  google_cloud_run_v2_job_iam_member: 'name',
  google_cloud_run_v2_service_iam_member: 'name',
  google_service_account_iam_member: 'service_account_id',
  google_artifact_registry_repository_iam_member: 'repository',
  google_compute_subnetwork_iam_member: 'subnetwork',
};

/** Every IAM grant that exists in SCENARIO. */
function grantsOf(tf: Parsed, scenario: Scenario): Grant[] {
  const grants: Grant[] = [];
  for (const [type, byName] of Object.entries(tf.resources)) {
    if (!IAM_MEMBER.test(type)) continue;
    for (const [name, [block]] of Object.entries(byName)) {
      if (!exists(tf, scenario, block!)) continue;
      let target = 'project';
      if (type !== 'google_project_iam_member') {
        const argument = TARGET_ARGUMENT[type];
        const m = /^\$\{(google_\w+\.\w+)(?:\[0\])?\.(?:name|id)\}$/.exec(String(block![argument ?? '']));
        if (!m) throw new Error(`${type}.${name}: what is it granted on? (${argument})`);
        target = m[1]!;
      }
      const condition = (block!.condition as Block[] | undefined)?.[0]?.expression;
      grants.push({
        address: `${type}.${name}`,
        member: String(block!.member),
        role: String(block!.role),
        target,
        ...(condition === undefined ? {} : { condition: String(condition) }),
      });
    }
  }
  return grants;
}

/** The permissions ROLE holds: a custom role's from terraform, a predefined one's from the table. */
function permissionsOf(tf: Parsed, scenario: Scenario, role: string): string[] | undefined {
  const custom = /^\$\{google_project_iam_custom_role\.(\w+)(?:\[0\])?\.id\}$/.exec(role);
  if (custom) {
    const block = tf.resources.google_project_iam_custom_role?.[custom[1]!]?.[0];
    if (block === undefined || !exists(tf, scenario, block)) return undefined;
    return block.permissions as string[];
  }
  return PREDEFINED_ROLES[role]?.permissions;
}

function covers(tf: Parsed, scenario: Scenario, grant: Grant, call: Call): boolean {
  if (grant.member !== MEMBERS[call.caller]) return false;
  if (grant.target !== 'project' && grant.target !== call.resource.terraform) return false;
  if (!(permissionsOf(tf, scenario, grant.role) ?? []).includes(call.permission)) return false;
  if (grant.condition === undefined) return true;
  return evaluateCondition(resolve(tf, scenario, grant.condition), {
    type: call.resource.type,
    name: resolve(tf, scenario, call.resource.name),
  });
}

interface Report {
  /** Ids of the calls no grant covers. */
  ungranted: string[];
  problems: string[];
}

/** The contract, for one scenario. */
function check(tf: Parsed, scenario: Scenario): Report {
  const report: Report = { ungranted: [], problems: [] };
  const grants = grantsOf(tf, scenario);
  const used = new Map<string, Set<string>>(); // grant address -> permissions calls use through it
  const known = new Set(Object.values(MEMBERS));
  for (const call of CALLS) {
    if (call.outsideTerraform !== undefined || !applies(tf, scenario, call)) continue;
    const covering = grants.filter((grant) => covers(tf, scenario, grant, call));
    if (covering.length === 0) {
      report.ungranted.push(call.id);
      report.problems.push(
        `${call.id}: ${call.caller} is not granted ${call.permission} on ${call.resource.terraform}`,
      );
      continue;
    }
    for (const grant of covering) {
      if (!used.has(grant.address)) used.set(grant.address, new Set());
      used.get(grant.address)!.add(call.permission);
    }
    if (covering.length > 1)
      report.problems.push(
        `${call.id}: granted more than once (${covering.map((g) => g.address).join(', ')})`,
      );
    else if (covering[0]!.address !== call.grant)
      report.problems.push(`${call.id}: granted by ${covering[0]!.address}, the table says ${call.grant}`);
  }
  for (const grant of grants) {
    if (/^roles\/(owner|editor|viewer)$|\.admin$/.test(grant.role))
      report.problems.push(`${grant.address}: ${grant.role} is far more than any call needs`);
    if (
      grant.target === 'project' &&
      grant.condition === undefined &&
      !(grant.address in PROJECT_WIDE_ALLOWED)
    )
      report.problems.push(
        `${grant.address}: project-wide without a condition, and not in PROJECT_WIDE_ALLOWED`,
      );
    if (!known.has(grant.member)) continue; // jobs_callers: people, not parts of the pipeline
    const permissions = permissionsOf(tf, scenario, grant.role);
    if (permissions === undefined) {
      report.problems.push(`${grant.address}: ${grant.role} is not in PREDEFINED_ROLES`);
      continue;
    }
    const needed = used.get(grant.address);
    if (needed === undefined) {
      report.problems.push(`${grant.address}: no call in the table needs it`);
      continue;
    }
    if (grant.role.startsWith('${google_project_iam_custom_role.')) {
      for (const permission of permissions)
        if (!needed.has(permission))
          report.problems.push(`${grant.address}: its custom role holds ${permission}, which no call needs`);
    }
  }
  return report;
}

/** TF with the resource at ADDRESS removed, or changed by CHANGE. */
function mutated(address: string, change?: (block: Block) => void): Parsed {
  const copy = structuredClone(TF);
  const [type, name] = address.split('.') as [string, string];
  if (change === undefined) delete copy.resources[type]![name];
  else change(copy.resources[type]![name]![0]!);
  return copy;
}

describe('the permission table', () => {
  it('points at code that makes each call, at grants that exist, and at Google documentation', () => {
    const ids = new Set<string>();
    for (const call of CALLS) {
      expect(ids.has(call.id), `${call.id} is listed twice`).toBe(false);
      ids.add(call.id);
      const file = path.join(ROOT, call.code.file);
      expect(fs.existsSync(file), `${call.id}: ${call.code.file}`).toBe(true);
      expect(fs.readFileSync(file, 'utf8'), `${call.id}: ${call.code.file} makes the call`).toContain(
        call.code.text,
      );
      expect(call.doc, call.id).toMatch(/^https:\/\/cloud\.google\.com\//);
      expect(
        (call.grant === undefined) !== (call.outsideTerraform === undefined),
        `${call.id}: grant or outsideTerraform`,
      ).toBe(true);
      if (call.grant !== undefined) {
        const [type, name] = call.grant.split('.') as [string, string];
        expect(TF.resources[type]?.[name], `${call.id}: ${call.grant}`).toBeDefined();
        expect(MEMBERS[call.caller], `${call.id}: ${call.caller} has no terraform member`).toBeDefined();
      }
      if (call.resource.terraform !== 'project') {
        const [type, name] = call.resource.terraform.split('.') as [string, string];
        expect(TF.resources[type]?.[name], `${call.id}: ${call.resource.terraform}`).toBeDefined();
      }
    }
    for (const [role, entry] of Object.entries(PREDEFINED_ROLES)) {
      expect(entry.doc, role).toMatch(/^https:\/\/cloud\.google\.com\/iam\/docs\/roles-permissions\//);
      expect(entry.permissions.length, role).toBeGreaterThan(0);
    }
  });

  it('allows project-wide grants only that terraform makes', () => {
    for (const [address, reason] of Object.entries(PROJECT_WIDE_ALLOWED)) {
      const [type, name] = address.split('.') as [string, string];
      expect(type, address).toBe('google_project_iam_member');
      expect(TF.resources[type]?.[name], address).toBeDefined();
      expect(reason.length, address).toBeGreaterThan(20);
    }
  });
});

describe('terraform grants what the table needs, and no more', () => {
  it.each(SCENARIOS)('$name', (scenario) => {
    expect(check(TF, scenario).problems).toEqual([]);
  });

  it('grants the dispatcher execution and task reads on the worker job, which jobsExecutorWithOverrides lacks', () => {
    const executor = PREDEFINED_ROLES['roles/run.jobsExecutorWithOverrides']!.permissions;
    expect([...executor].sort()).toEqual([
      'run.executions.cancel',
      'run.jobs.run',
      'run.jobs.runWithOverrides',
    ]);
    for (const permission of ['run.executions.get', 'run.tasks.list', 'run.operations.get'])
      expect(executor).not.toContain(permission);
  });
});

// Each grant the table relies on, with the scenario its calls happen in.
const RELIED_ON = [...new Set(CALLS.flatMap((call) => (call.grant === undefined ? [] : [call.grant])))].map(
  (grant) => {
    const calls = CALLS.filter((call) => call.grant === grant);
    const scenario = SCENARIOS.find((s) => calls.some((call) => applies(TF, s, call)))!;
    return { grant, scenario, calls: calls.filter((call) => applies(TF, scenario, call)).map((c) => c.id) };
  },
);

describe('the check fails when a grant it relies on is missing', () => {
  it("relies on every grant terraform makes to the pipeline's accounts and agents", () => {
    const known = new Set(Object.values(MEMBERS));
    const made = SCENARIOS.flatMap((s) => grantsOf(TF, s))
      .filter((g) => known.has(g.member))
      .map((g) => g.address);
    expect([...new Set(made)].sort()).toEqual(RELIED_ON.map((r) => r.grant).sort());
  });

  it.each(RELIED_ON)('without $grant', ({ grant, scenario, calls }) => {
    const report = check(mutated(grant), scenario);
    expect(report.ungranted.sort()).toEqual([...calls].sort());
  });
});

describe('the check fails on grants broader than they should be', () => {
  const scenario = SCENARIOS[0]!;

  it('a project-wide grant without a condition that is not allowed', () => {
    const tf = mutated('google_project_iam_member.dispatcher_firestore', (block) => delete block.condition);
    expect(check(tf, scenario).problems).toContain(
      'google_project_iam_member.dispatcher_firestore: project-wide without a condition, and not in PROJECT_WIDE_ALLOWED',
    );
  });

  it('owner, editor and admin roles', () => {
    for (const role of ['roles/owner', 'roles/editor', 'roles/compute.admin']) {
      const tf = mutated('google_project_iam_member.worker_logs', (block) => (block.role = role));
      expect(check(tf, scenario).problems, role).toContain(
        `google_project_iam_member.worker_logs: ${role} is far more than any call needs`,
      );
    }
  });

  it('a custom role permission no call needs', () => {
    const tf = mutated('google_project_iam_custom_role.vm_self_delete', (block) =>
      (block.permissions as string[]).push('compute.instances.get'),
    );
    expect(check(tf, scenario).problems).toContain(
      'google_project_iam_member.worker_deletes_own_vm: its custom role holds compute.instances.get, which no call needs',
    );
  });

  it('a name condition on a grant whose calls are checked on the project (a list)', () => {
    const tf = mutated('google_project_iam_member.dispatcher_project_reads', (block) => {
      block.condition = [{ title: 'x', expression: '${local.vm_names_condition}' }];
    });
    expect(check(tf, scenario).ungranted).toEqual(
      expect.arrayContaining(['list-instances', 'wait-zone-operation', 'get-run-operation']),
    );
  });

  it('the VM condition admits no instance, disk or image of another name', () => {
    const report = check(TF, scenario);
    expect(report.problems).toEqual([]);
    const other = {
      type: 'compute.googleapis.com/Instance',
      name: 'projects/demo-project/zones/europe-west1-b/instances/db-1',
    };
    const block = TF.resources.google_project_iam_member!.dispatcher_launches_vms![0]!;
    const expression = resolve(TF, scenario, String((block.condition as Block[])[0]!.expression));
    expect(evaluateCondition(expression, other)).toBe(false);
    expect(
      evaluateCondition(expression, {
        ...other,
        type: 'compute.googleapis.com/Disk',
        name: other.name.replace('instances', 'disks'),
      }),
    ).toBe(false);
    expect(
      evaluateCondition(expression, {
        type: 'compute.googleapis.com/Image',
        name: 'projects/demo-project/global/images/pipeline-x',
      }),
    ).toBe(false);
  });
});

describe('the dispatcher on the output bucket', () => {
  it("may write _LATEST pointers only, never a task's outputs", () => {
    const block = TF.resources.google_storage_bucket_iam_member!.dispatcher_moves_latest![0]!;
    const expression = String((block.condition as Block[])[0]!.expression);
    const object = (name: string) => ({
      type: 'storage.googleapis.com/Object',
      name: `projects/_/buckets/acme-output/objects/${name}`,
    });
    expect(evaluateCondition(expression, object('sales/q3.csv/_LATEST'))).toBe(true);
    for (const name of [
      'sales/q3.csv/17/predictions.csv',
      'sales/q3.csv/17/_SUCCESS',
      'runs/x/_LATESTS',
      '_LATEST.csv',
    ])
      expect(evaluateCondition(expression, object(name)), name).toBe(false);
  });
});

describe('the dispatcher on the output bucket, for batches', () => {
  it('may create batch manifests only, under _pipeline/batches/', () => {
    const block = TF.resources.google_storage_bucket_iam_member!.dispatcher_writes_batch_manifests![0]!;
    const expression = resolve(TF, SCENARIOS[0]!, String((block.condition as Block[])[0]!.expression));
    const bucketName = resolve(TF, SCENARIOS[0]!, '${google_storage_bucket.output.name}');
    const object = (name: string, inBucket = bucketName) => ({
      type: 'storage.googleapis.com/Object',
      name: `projects/_/buckets/${inBucket}/objects/${name}`,
    });
    expect(evaluateCondition(expression, object('_pipeline/batches/batch-1.json'))).toBe(true);
    for (const name of ['sales/q3.csv/17/_SUCCESS', '_pipeline/other', 'x/_pipeline/batches/a.json'])
      expect(evaluateCondition(expression, object(name)), name).toBe(false);
    expect(evaluateCondition(expression, object('_pipeline/batches/b.json', 'another-bucket'))).toBe(false);
  });
});

describe('IAM conditions as evaluated here', () => {
  it.each([
    ['resource.type == "a/B"', { type: 'a/B', name: 'n' }, true],
    ['resource.type != "a/B"', { type: 'a/B', name: 'n' }, false],
    ['resource.name.startsWith("projects/p/")', { type: 't', name: 'projects/p/x' }, true],
    ['resource.name.endsWith("/_LATEST")', { type: 't', name: 'b/o/_LATEST' }, true],
    ['resource.name.endsWith("/_LATEST")', { type: 't', name: 'b/o/_LATEST/x' }, false],
    ['resource.name.startsWith("projects/p/")', { type: 't', name: 'projects/q/x' }, false],
    ['resource.type != "a/B" || resource.name.startsWith("x")', { type: 'c/D', name: 'y' }, true],
    [
      '(resource.type == "a/B" && resource.name.startsWith("x")) || !(resource.name == "y")',
      { type: 'a/B', name: 'y' },
      false,
    ],
  ])('%s on %j is %s', (expression, resource, expected) => {
    expect(evaluateCondition(expression, resource)).toBe(expected);
  });
});
