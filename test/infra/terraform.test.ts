// Static checks of the Terraform in terraform/ and of cloudbuild.yaml. Terraform cannot download
// providers here (no network), so `terraform validate` is out of reach: every .tf file is parsed with
// a real HCL parser (@cdktf/hcl2json, terraform-model.ts) and the tests assert on the structure: what
// exists, the task VMs' network, that pushes are authenticated and dead-lettered, and that the
// dispatcher's environment covers what services/dispatcher/src/config.ts requires. Who may call what
// is permissions.test.ts's.
import fs from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../services/dispatcher/src/config.ts';
import {
  evaluateCondition,
  parseTerraform,
  resolve,
  ROOT,
  TERRAFORM,
  type Block,
  type Parsed,
} from './terraform-model.ts';

let tf: Parsed;

/** The one block of resource TYPE.NAME. */
function resource(type: string, name: string): Block {
  const blocks = tf.resources[type]?.[name];
  expect(blocks, `resource ${type}.${name}`).toBeDefined();
  return blocks![0]!;
}

/** The first nested block KEY of BLOCK (hcl2json gives nested blocks as arrays). */
function nested(block: Block, key: string): Block {
  const value = block[key];
  expect(Array.isArray(value) && value.length > 0, `block ${key}`).toBe(true);
  return (value as Block[])[0]!;
}

/** Every resource of a type, as [name, block]. */
function resourcesOf(type: string): [string, Block][] {
  return Object.entries(tf.resources[type] ?? {}).map(([name, blocks]) => [name, blocks[0]!]);
}

beforeAll(async () => {
  tf = await parseTerraform();
});

/** What config.ts requires of a dispatcher in project my-project (auth off), for the VM_* checks. */
const MINIMAL_DISPATCHER_ENV = {
  GOOGLE_CLOUD_PROJECT: 'my-project',
  REGION: 'us-central1',
  ZONE: 'us-central1-a',
  OUTPUT_BUCKET: 'my-output',
  WORKER_JOB: 'pipeline-worker',
  WORKER_IMAGE: 'worker:1',
  AGENT_IMAGE: 'agent:1',
  WORKER_SERVICE_ACCOUNT: 'w@my-project.iam.gserviceaccount.com',
  COMPLETIONS_TOPIC: 'pipeline-completions',
  PUSH_AUTH: 'off',
};

describe('terraform layout', () => {
  it('has the files of the conventions', () => {
    for (const file of [
      'versions.tf',
      'variables.tf',
      'main.tf',
      'outputs.tf',
      'storage.tf',
      'pubsub.tf',
      'iam.tf',
      'run.tf',
      'scheduler.tf',
      'firestore.tf',
      'registry.tf',
      'network.tf',
      'roles.tf',
      'build.tf',
    ]) {
      expect(Object.keys(tf.files), file).toContain(file);
    }
  });

  it('pins required_version and the google provider in versions.tf', () => {
    const terraform = (tf.files['versions.tf']!.terraform as Block[])[0]!;
    expect(terraform.required_version).toMatch(/>=\s*1\.([5-9]|\d{2})/);
    const providers = (terraform.required_providers as Block[])[0]!;
    const google = providers.google as Block;
    expect(google.source).toBe('hashicorp/google');
    expect(google.version).toBe('~> 6.0');
  });

  it('gives every variable a type and a description', () => {
    expect(Object.keys(tf.variables).length).toBeGreaterThan(10);
    for (const [name, variable] of Object.entries(tf.variables)) {
      expect(variable.type, `variable ${name} type`).toBeTruthy();
      expect(String(variable.description ?? ''), `variable ${name} description`).not.toBe('');
    }
  });

  it('declares the variables setup.sh sets, with validations where a wrong value is likely', () => {
    for (const name of [
      'project_id',
      'region',
      'zone',
      'name_prefix',
      'input_bucket',
      'output_bucket',
      'shared_bucket',
      'vm_machine_type',
      'vm_spot',
      'deletion_protection',
      'reaper_schedule',
      'reconcile_schedule',
      'log_retention_days',
      'dispatcher_image',
      'worker_image',
      'agent_image',
      'jobs_callers',
      'vm_subnet_cidr',
      'vm_external_ip',
      'vm_nat',
      'vm_image_family',
      'vm_image_project',
    ]) {
      expect(tf.variables[name], `variable ${name}`).toBeDefined();
    }
    for (const name of ['project_id', 'region', 'zone', 'name_prefix', 'reaper_schedule', 'jobs_callers'])
      expect(tf.variables[name]!.validation, `validation of ${name}`).toBeDefined();
    expect(tf.variables.region!.default).toBe('us-central1');
    expect(tf.variables.zone!.default).toBe('us-central1-a');
    expect(tf.variables.name_prefix!.default).toBe('pipeline');
    expect(tf.variables.deletion_protection!.default).toBe(true);
    expect(tf.variables.reaper_schedule!.default).toBe('*/5 * * * *');
    expect(tf.variables.reconcile_schedule!.default).toBe('* * * * *');
    expect(tf.variables.log_retention_days!.default).toBe(30);
    expect(tf.variables.dispatcher_image!.default).toBe('');
    expect(tf.variables.worker_image!.default).toBe('');
    expect(tf.variables.agent_image!.default).toBe('');
    expect(tf.variables.jobs_callers!.default).toEqual([]);
  });

  it('declares every output the scripts read', () => {
    for (const name of [
      'project_id',
      'region',
      'zone',
      'input_bucket',
      'output_bucket',
      'shared_bucket',
      'image_uri',
      'service_name',
      'service_url',
      'job_name',
      'uploads_topic',
      'completions_topic',
      'dead_letter_topic',
      'dispatcher_service_account',
      'worker_service_account',
      'push_service_account',
      'build_service_account',
      'build_source_bucket',
      'vm_network',
      'vm_subnetwork',
    ]) {
      expect(tf.outputs[name], `output ${name}`).toBeDefined();
      expect(String(tf.outputs[name]!.description ?? ''), `output ${name} description`).not.toBe('');
    }
    expect(tf.outputs.image_uri!.value).toMatch(/-docker\.pkg\.dev\/\$\{var\.project_id\}\//);
    expect(tf.outputs.service_url!.value).toMatch(/local\.create_service \? .* : ""/);
  });

  it('refers only to declared variables, locals, resources and data sources', () => {
    const sources = fs
      .readdirSync(TERRAFORM)
      .filter((f) => f.endsWith('.tf'))
      .map((f) => fs.readFileSync(path.join(TERRAFORM, f), 'utf8').replace(/^\s*#.*$/gm, ''))
      .join('\n');
    for (const [, name] of sources.matchAll(/\bvar\.([a-z_][a-z0-9_]*)/g))
      expect(Object.keys(tf.variables), `var.${name}`).toContain(name);
    for (const [, name] of sources.matchAll(/\blocal\.([a-z_][a-z0-9_]*)/g))
      expect(Object.keys(tf.locals), `local.${name}`).toContain(name);
    for (const [, type, name] of sources.matchAll(/(?<![.\w"])(google_[a-z0-9_]+)\.([a-z_][a-z0-9_]*)/g))
      expect(tf.resources[type!]?.[name!], `${type}.${name}`).toBeDefined();
    for (const [, type, name] of sources.matchAll(/\bdata\.(google_[a-z0-9_]+)\.([a-z_][a-z0-9_]*)/g))
      expect(tf.data[type!]?.[name!], `data.${type}.${name}`).toBeDefined();
  });
});

describe('resources', () => {
  it('has every resource of the design', () => {
    const expected: [string, string][] = [
      ['google_project_service', 'apis'],
      ['google_storage_bucket', 'input'],
      ['google_storage_bucket', 'output'],
      ['google_storage_bucket', 'shared'],
      ['google_storage_notification', 'uploads'],
      ['google_pubsub_topic', 'uploads'],
      ['google_pubsub_topic', 'completions'],
      ['google_pubsub_topic', 'dead_letter'],
      ['google_pubsub_topic', 'job_events'],
      ['google_pubsub_subscription', 'uploads'],
      ['google_pubsub_subscription', 'completions'],
      ['google_pubsub_subscription', 'dead_letter'],
      ['google_artifact_registry_repository', 'images'],
      ['google_firestore_database', 'ledger'],
      ['google_firestore_index', 'jobs_by_state'],
      ['google_firestore_index', 'jobs_by_rule'],
      ['google_service_account', 'dispatcher'],
      ['google_service_account', 'worker'],
      ['google_service_account', 'push'],
      ['google_project_iam_custom_role', 'vm_self_delete'],
      ['google_project_iam_custom_role', 'vm_launcher'],
      ['google_project_iam_custom_role', 'dispatcher_project_reads'],
      ['google_project_iam_custom_role', 'vm_subnet_user'],
      ['google_service_account', 'build'],
      ['google_storage_bucket', 'build_source'],
      ['google_compute_network', 'vms'],
      ['google_compute_subnetwork', 'vms'],
      ['google_compute_router', 'vms'],
      ['google_compute_router_nat', 'vms'],
      ['google_cloud_run_v2_service', 'dispatcher'],
      ['google_cloud_run_v2_job', 'worker'],
      ['google_cloud_scheduler_job', 'maintenance'],
    ];
    for (const [type, name] of expected) resource(type, name);
  });

  it('enables the APIs and leaves them on at destroy', () => {
    const apis = resource('google_project_service', 'apis');
    expect(apis.disable_on_destroy).toBe(false);
    expect(apis.for_each).toBe('${local.apis}');
    const list = String(tf.locals.apis);
    for (const api of [
      'cloudresourcemanager',
      'serviceusage',
      'run',
      'compute',
      'pubsub',
      'storage',
      'firestore',
      'artifactregistry',
      'cloudbuild',
      'cloudscheduler',
      'iam',
      'logging',
    ]) {
      expect(list, api).toContain(`"${api}.googleapis.com"`);
    }
  });

  it('makes private, unversioned buckets, force-destroyed only without deletion protection', () => {
    for (const name of ['input', 'output', 'shared']) {
      const bucket = resource('google_storage_bucket', name);
      expect(bucket.uniform_bucket_level_access, name).toBe(true);
      expect(bucket.public_access_prevention, name).toBe('enforced');
      expect(nested(bucket, 'versioning').enabled, name).toBe(false);
      expect(bucket.force_destroy, name).toBe('${!var.deletion_protection}');
    }
  });

  it('ages the task logs out of the output bucket after log_retention_days', () => {
    const rule = nested(resource('google_storage_bucket', 'output'), 'lifecycle_rule');
    const condition = nested(rule, 'condition');
    expect(condition.age).toBe('${var.log_retention_days}');
    // Logs are <object path>/logs/attempt-N.log (core's `launching` transition): they share a suffix,
    // not a prefix.
    const transitions = fs.readFileSync(path.join(ROOT, 'packages/core/src/transitions.ts'), 'utf8');
    expect(transitions).toMatch(/`\$\{prefix\}logs\/attempt-\$\{job\.attempt\}\.log`/);
    expect(condition.matches_suffix).toEqual(['.log']);
    expect(nested(rule, 'action').type).toBe('Delete');
  });

  it('notifies uploads of the input bucket only, with a publisher grant for the storage agent first', () => {
    const notifications = resourcesOf('google_storage_notification');
    expect(notifications).toHaveLength(1);
    const [, notification] = notifications[0]!;
    expect(notification.bucket).toBe('${google_storage_bucket.input.name}');
    expect(notification.topic).toBe('${google_pubsub_topic.uploads.id}');
    expect(notification.event_types).toEqual(['OBJECT_FINALIZE']);
    expect(notification.payload_format).toBe('JSON_API_V1');
    expect(notification.depends_on).toContain('${google_pubsub_topic_iam_member.gcs_publishes_uploads}');
    for (const [name, n] of notifications)
      expect(JSON.stringify(n), name).not.toContain('google_storage_bucket.output');

    const grant = resource('google_pubsub_topic_iam_member', 'gcs_publishes_uploads');
    expect(grant.topic).toBe('${google_pubsub_topic.uploads.id}');
    expect(grant.role).toBe('roles/pubsub.publisher');
    expect(grant.member).toContain('data.google_storage_project_service_account.gcs.email_address');
  });

  it('authenticates and dead-letters every push subscription', () => {
    const pushes = resourcesOf('google_pubsub_subscription').filter(([, s]) => s.push_config !== undefined);
    expect(pushes.map(([name]) => name).sort()).toEqual(['completions', 'uploads']);
    for (const [name, subscription] of pushes) {
      const push = nested(subscription, 'push_config');
      const oidc = nested(push, 'oidc_token');
      expect(oidc.service_account_email, name).toBe('${google_service_account.push.email}');
      expect(oidc.audience, name).toBe('${local.service_url}');
      const deadLetter = nested(subscription, 'dead_letter_policy');
      expect(deadLetter.dead_letter_topic, name).toBe('${google_pubsub_topic.dead_letter.id}');
      expect(deadLetter.max_delivery_attempts, name).toBeDefined();
      const retry = nested(subscription, 'retry_policy');
      expect(retry.minimum_backoff, name).toBe('10s');
      expect(retry.maximum_backoff, name).toBe('600s');
      expect(subscription.ack_deadline_seconds, name).toBeDefined();
      expect(subscription.count, name).toBe('${local.create_service ? 1 : 0}');
    }
    expect(tf.locals.push_ack_deadline_seconds).toBe(300);
    expect(tf.locals.max_delivery_attempts).toBe(10);
    expect(nested(resource('google_pubsub_subscription', 'uploads'), 'push_config').push_endpoint).toMatch(
      /\/pubsub\/push$/,
    );
    expect(
      nested(resource('google_pubsub_subscription', 'completions'), 'push_config').push_endpoint,
    ).toMatch(/\/pubsub\/completions$/);
    const deadLetters = resource('google_pubsub_subscription', 'dead_letter');
    expect(deadLetters.topic).toBe('${google_pubsub_topic.dead_letter.id}');
    expect(deadLetters.message_retention_duration).toBe('${local.message_retention}');
    expect(tf.locals.message_retention).toBe('604800s');
  });

  it('lets the Pub/Sub service agent dead-letter and mint push tokens', () => {
    expect(tf.locals.pubsub_service_agent).toBe(
      'service-${local.project_number}@gcp-sa-pubsub.iam.gserviceaccount.com',
    );
    const publisher = resource('google_pubsub_topic_iam_member', 'pubsub_agent_publishes_dead_letters');
    expect(publisher.topic).toBe('${google_pubsub_topic.dead_letter.id}');
    expect(publisher.role).toBe('roles/pubsub.publisher');
    expect(publisher.member).toBe('${local.pubsub_service_member}');
    for (const name of ['uploads', 'completions']) {
      const subscriber = resource('google_pubsub_subscription_iam_member', `pubsub_agent_acks_${name}`);
      expect(subscriber.subscription).toBe(`\${google_pubsub_subscription.${name}[0].name}`);
      expect(subscriber.role).toBe('roles/pubsub.subscriber');
      expect(subscriber.member).toBe('${local.pubsub_service_member}');
    }
    const tokens = resource('google_service_account_iam_member', 'pubsub_agent_mints_push_tokens');
    expect(tokens.service_account_id).toBe('${google_service_account.push.name}');
    expect(tokens.role).toBe('roles/iam.serviceAccountTokenCreator');
  });

  it('makes the job-events topic, which only the dispatcher may publish to, and names it in an output', () => {
    const topic = resource('google_pubsub_topic', 'job_events');
    expect(topic.name).toBe('${var.name_prefix}-job-events');
    expect(topic.message_retention_duration).toBe('${local.message_retention}');
    const publishers = resourcesOf('google_pubsub_topic_iam_member').filter(
      ([, grant]) => grant.topic === '${google_pubsub_topic.job_events.id}',
    );
    expect(publishers.map(([name]) => name)).toEqual(['dispatcher_publishes_job_events']);
    expect(publishers[0]![1]).toMatchObject({
      role: 'roles/pubsub.publisher',
      member: '${local.dispatcher_sa_member}',
    });
    expect(tf.outputs.job_events_topic!.value).toBe('${google_pubsub_topic.job_events.name}');
  });

  it('creates the composite index of FIRESTORE_INDEXES', async () => {
    const { FIRESTORE_INDEXES } = await import('../../services/dispatcher/src/gcp/firestore-ledger.ts');
    const database = resource('google_firestore_database', 'ledger');
    expect(database.name).toBe('(default)');
    expect(database.type).toBe('FIRESTORE_NATIVE');
    expect(tf.locals.ledger_collection).toBe('jobs');
    const declared = ['jobs_by_state', 'jobs_queued', 'jobs_by_rule'].map((name) => {
      const index = resource('google_firestore_index', name);
      expect(index.collection).toBe('${local.ledger_collection}');
      expect(index.query_scope).toBe('COLLECTION');
      // Firestore appends __name__ itself; Terraform spells it out.
      return (index.fields as Block[])
        .map((f) => ({ fieldPath: f.field_path, order: f.order }))
        .filter((f) => f.fieldPath !== '__name__');
    });
    expect(FIRESTORE_INDEXES.indexes.map((wanted) => wanted.fields)).toEqual(declared);
    for (const wanted of FIRESTORE_INDEXES.indexes) expect(wanted.collectionGroup).toBe('jobs');
    const unindexed = resource('google_firestore_field', 'unindexed');
    for (const field of FIRESTORE_INDEXES.fieldOverrides.map((o) => o.fieldPath)) {
      expect(String(unindexed.for_each)).toContain(`"${field}"`);
    }
  });
});

describe('IAM', () => {
  const IAM_TYPE = /^google_.*_iam_(member|binding|policy)$/;

  function grants(): { type: string; name: string; block: Block }[] {
    return Object.entries(tf.resources)
      .filter(([type]) => IAM_TYPE.test(type))
      .flatMap(([type, byName]) =>
        Object.entries(byName).map(([name, blocks]) => ({ type, name, block: blocks[0]! })),
      );
  }

  it('never grants owner or editor, nor anything to the public', () => {
    const all = grants();
    expect(all.length).toBeGreaterThan(15);
    for (const { type, name, block } of all) {
      const text = JSON.stringify(block);
      expect(text, `${type}.${name}`).not.toMatch(/roles\/(owner|editor)\b/);
      expect(text, `${type}.${name}`).not.toMatch(/allUsers|allAuthenticatedUsers/);
    }
    // Nor anywhere else (an authoritative policy, a local holding the members).
    for (const [file, json] of Object.entries(tf.files)) {
      const text = JSON.stringify(json);
      expect(text, file).not.toMatch(/roles\/(owner|editor)\b/);
      expect(text, file).not.toMatch(/"allUsers"|"allAuthenticatedUsers"/);
    }
  });

  it('uses no authoritative IAM resources (they would remove grants made elsewhere)', () => {
    for (const { type, name } of grants()) expect(`${type}.${name}`).toMatch(/_iam_member\./);
  });

  it('names the VMs in conditions as the dispatcher names them', () => {
    // instanceName() in compute-launcher.ts: pipeline-<job id>-a<attempt>.
    const launcher = fs.readFileSync(
      path.join(ROOT, 'services/dispatcher/src/gcp/compute-launcher.ts'),
      'utf8',
    );
    expect(launcher).toContain(`return \`${String(tf.locals.vm_name_prefix)}\${jobId.slice(0, 20)}`);
    for (const name of ['dispatcher_launches_vms', 'worker_deletes_own_vm']) {
      const condition = nested(resource('google_project_iam_member', name), 'condition');
      expect(String(condition.expression), name).toBe('${local.vm_names_condition}');
    }
    // Every zone a VM is tried in (VM_ZONES), and only those: pipeline-* instances and disks.
    const scenario = {
      name: 'fallback zones',
      vars: {
        project_id: 'p',
        region: 'europe-west1',
        zone: 'europe-west1-b',
        vm_fallback_zones: ['europe-west1-c'],
      },
    };
    const condition = resolve(tf, scenario, String(tf.locals.vm_names_condition));
    const admits = (type: string, name: string) => evaluateCondition(condition, { type, name });
    const INSTANCE = 'compute.googleapis.com/Instance';
    for (const zone of ['europe-west1-b', 'europe-west1-c']) {
      expect(admits(INSTANCE, `projects/p/zones/${zone}/instances/pipeline-0123-a1`), zone).toBe(true);
      expect(
        admits('compute.googleapis.com/Disk', `projects/p/zones/${zone}/disks/pipeline-0123-a1`),
        zone,
      ).toBe(true);
    }
    expect(admits(INSTANCE, 'projects/p/zones/europe-west1-d/instances/pipeline-0123-a1')).toBe(false);
    expect(admits(INSTANCE, 'projects/p/zones/europe-west1-c/instances/db-1')).toBe(false);
    expect(
      admits('compute.googleapis.com/Image', 'projects/p/zones/europe-west1-c/instances/pipeline-0123-a1'),
    ).toBe(false);
    expect(resolve(tf, scenario, (tf.locals.dispatcher_env as Record<string, string>).VM_ZONES!)).toBe(
      'europe-west1-b,europe-west1-c',
    );
    expect(
      parseConfig({
        ...MINIMAL_DISPATCHER_ENV,
        REGION: 'europe-west1',
        ZONE: 'europe-west1-b',
        VM_ZONES: 'europe-west1-b,europe-west1-c',
      }).vm.zones,
    ).toEqual(['europe-west1-b', 'europe-west1-c']);
  });

  it('runs the image build as its own account, never as a default one', () => {
    const account = resource('google_service_account', 'build');
    expect(account.account_id).toBe('${var.name_prefix}-build');
    expect(tf.outputs.build_service_account!.value).toBe(
      'projects/${var.project_id}/serviceAccounts/${google_service_account.build.email}',
    );
    const bucket = resource('google_storage_bucket', 'build_source');
    expect(bucket.uniform_bucket_level_access).toBe(true);
    expect(bucket.public_access_prevention).toBe('enforced');
    expect(nested(nested(bucket, 'lifecycle_rule'), 'condition').age).toBe(7);
    expect(tf.outputs.build_source_bucket!.value).toBe('${google_storage_bucket.build_source.name}');
  });
});

describe('network', () => {
  it('puts the task VMs in a VPC of their own, with Private Google Access on its subnet', () => {
    const network = resource('google_compute_network', 'vms');
    expect(network.auto_create_subnetworks).toBe(false);
    // The default route to the internet gateway stays: Private Google Access and Cloud NAT use it.
    expect(network.delete_default_routes_on_create ?? false).toBe(false);
    const subnet = resource('google_compute_subnetwork', 'vms');
    expect(subnet.network).toBe('${google_compute_network.vms.id}');
    expect(subnet.region).toBe('${var.region}');
    expect(subnet.ip_cidr_range).toBe('${var.vm_subnet_cidr}');
    expect(subnet.private_ip_google_access).toBe(true);
    expect(tf.variables.vm_subnet_cidr!.validation).toBeDefined();
  });

  it('has Cloud NAT for the subnet by default, and none with vm_nat = false', () => {
    expect(tf.variables.vm_nat!.type).toBe('${bool}');
    expect(tf.variables.vm_nat!.default).toBe(true);
    const router = resource('google_compute_router', 'vms');
    const nat = resource('google_compute_router_nat', 'vms');
    for (const block of [router, nat]) expect(block.count).toBe('${var.vm_nat ? 1 : 0}');
    expect(router.network).toBe('${google_compute_network.vms.id}');
    expect(nat.router).toBe('${google_compute_router.vms[0].name}');
    expect(nat.source_subnetwork_ip_ranges_to_nat).toBe('LIST_OF_SUBNETWORKS');
    expect(nested(nat, 'subnetwork').name).toBe('${google_compute_subnetwork.vms.id}');
    // Only VMs with neither NAT nor an external IP reach nothing but Google APIs: a warning, not an error.
    const check = (tf.files['network.tf']!.check as Record<string, Block[]>).vm_egress![0]!;
    expect(nested(check, 'assert').condition).toBe('${var.vm_nat || var.vm_external_ip}');
  });

  it('passes the network as partial URLs networkInterfaces accepts, which the launcher sends as they are', () => {
    const scenario = { name: 'default', vars: { project_id: 'my-project', name_prefix: 'pipeline' } };
    const env = tf.locals.dispatcher_env as Record<string, string>;
    const network = resolve(tf, scenario, env.VM_NETWORK!);
    const subnetwork = resolve(tf, scenario, env.VM_SUBNETWORK!);
    expect(network).toBe('projects/my-project/global/networks/pipeline-vms');
    expect(subnetwork).toBe('projects/my-project/regions/us-central1/subnetworks/pipeline-vms');
    // The forms instances.insert documents for networkInterfaces[].network and .subnetwork:
    // https://cloud.google.com/compute/docs/reference/rest/v1/instances
    expect(network).toMatch(/^projects\/[a-z][-a-z0-9]+\/global\/networks\/[a-z][-a-z0-9]*$/);
    expect(subnetwork).toMatch(
      /^projects\/[a-z][-a-z0-9]+\/regions\/[a-z]+-[a-z]+\d+\/subnetworks\/[a-z][-a-z0-9]*$/,
    );
    const vm = parseConfig({
      ...MINIMAL_DISPATCHER_ENV,
      VM_NETWORK: network,
      VM_SUBNETWORK: subnetwork,
      VM_EXTERNAL_IP: 'false',
    }).vm;
    expect(vm.network).toBe(network);
    expect(vm.subnetwork).toBe(subnetwork);
    expect(vm.externalIp).toBe(false);
    // The launcher puts them in the interface unchanged, and an access config only with an external IP.
    const launcher = fs.readFileSync(
      path.join(ROOT, 'services/dispatcher/src/gcp/compute-launcher.ts'),
      'utf8',
    );
    expect(launcher).toContain('{ network: this.settings.network }');
    expect(launcher).toContain('{ subnetwork: this.settings.subnetwork }');
    expect(launcher).toMatch(/externalIp === true\s*\?\s*\{ accessConfigs:/);
  });

  it('lets nothing in: no ingress firewall rule anywhere (the implied deny-ingress applies)', () => {
    for (const [name, rule] of resourcesOf('google_compute_firewall')) {
      expect(String(rule.direction ?? 'INGRESS'), name).toBe('EGRESS');
    }
    for (const [name, rule] of resourcesOf('google_compute_network_firewall_policy_rule')) {
      expect(String(rule.direction ?? 'INGRESS'), name).toBe('EGRESS');
    }
  });

  it("gives VMs no external IP by default, and the boot image of the dispatcher's defaults", () => {
    expect(tf.variables.vm_external_ip!.default).toBe(false);
    expect(tf.variables.vm_image_family!.default).toBe('cos-stable');
    expect(tf.variables.vm_image_project!.default).toBe('cos-cloud');
    const defaults = parseConfig({
      ...MINIMAL_DISPATCHER_ENV,
    }).vm;
    expect(defaults.externalIp).toBe(tf.variables.vm_external_ip!.default);
    expect(defaults.imageFamily).toBe(tf.variables.vm_image_family!.default);
    expect(defaults.imageProject).toBe(tf.variables.vm_image_project!.default);
  });
});

describe('Cloud Run', () => {
  it('runs the dispatcher only once its image is given, never public, with the settings asked', () => {
    const service = resource('google_cloud_run_v2_service', 'dispatcher');
    expect(service.count).toBe('${local.create_service ? 1 : 0}');
    expect(tf.locals.create_service).toBe('${var.dispatcher_image != ""}');
    expect(service.ingress).toBe('INGRESS_TRAFFIC_ALL');
    const template = nested(service, 'template');
    expect(template.service_account).toBe('${google_service_account.dispatcher.email}');
    const scaling = nested(template, 'scaling');
    expect(scaling.min_instance_count).toBe(0);
    expect(scaling.max_instance_count).toBe('${var.dispatcher_max_instances}');
    const container = nested(template, 'containers');
    expect(container.image).toBe('${var.dispatcher_image}');
    const resources = nested(container, 'resources');
    expect(resources.limits).toEqual({ cpu: '1', memory: '512Mi' });
    expect(resources.startup_cpu_boost).toBe(true);
  });

  it("labels the VMs of each deployment with its own value, so one reaper never deletes another deployment's VMs", () => {
    const env = tf.locals.dispatcher_env as Record<string, string>;
    expect(env.VM_LABEL).toBe('${var.name_prefix}');
    expect(tf.outputs.vm_label!.value).toBe('${var.name_prefix}');
  });

  it("accepts people's own gcloud tokens only when the deployment asks for it", () => {
    expect(tf.variables.jobs_accept_gcloud_tokens!.default).toBe(false);
    const env = tf.locals.dispatcher_env as Record<string, string>;
    expect(env.JOBS_ACCEPT_GCLOUD_TOKENS).toBe('${tostring(var.jobs_accept_gcloud_tokens)}');
  });

  it('uses the deterministic service URL as the audience on both sides', () => {
    expect(tf.locals.service_url).toBe(
      'https://${local.service_name}-${local.project_number}.${var.region}.run.app',
    );
    const env = tf.locals.dispatcher_env as Record<string, string>;
    expect(env.PUSH_AUDIENCE).toBe('${local.service_url}');
    for (const [name, job] of resourcesOf('google_cloud_scheduler_job')) {
      const oidc = nested(nested(job, 'http_target'), 'oidc_token');
      expect(oidc.audience, name).toBe('${local.service_url}');
      expect(oidc.service_account_email, name).toBe('${google_service_account.push.email}');
    }
  });

  it('gives the dispatcher every variable config.ts requires, wired to the right resources', () => {
    const service = resource('google_cloud_run_v2_service', 'dispatcher');
    const container = nested(nested(service, 'template'), 'containers');
    const dynamicEnv = ((container.dynamic as Block).env as Block[])[0]!;
    expect(dynamicEnv.for_each).toBe('${local.dispatcher_env}');
    const env = tf.locals.dispatcher_env as Record<string, string>;

    // Which variables are required: drop each from a complete, valid environment in turn.
    const complete: NodeJS.ProcessEnv = {
      GOOGLE_CLOUD_PROJECT: 'my-project',
      REGION: 'us-central1',
      ZONE: 'us-central1-a',
      OUTPUT_BUCKET: 'my-project-pipeline-output',
      WORKER_JOB: 'pipeline-worker',
      WORKER_IMAGE: 'us-central1-docker.pkg.dev/my-project/pipeline/worker:1',
      AGENT_IMAGE: 'us-central1-docker.pkg.dev/my-project/pipeline/agent:1',
      WORKER_SERVICE_ACCOUNT: 'pipeline-worker@my-project.iam.gserviceaccount.com',
      COMPLETIONS_TOPIC: 'pipeline-completions',
      PUSH_AUDIENCE: 'https://pipeline-dispatcher-123.us-central1.run.app',
      PUSH_SERVICE_ACCOUNT: 'pipeline-push@my-project.iam.gserviceaccount.com',
    };
    expect(() => parseConfig(complete)).not.toThrow();
    const required = Object.keys(complete).filter((name) => {
      const { [name]: _dropped, ...rest } = complete;
      try {
        parseConfig(rest);
        return false;
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        return (err as ConfigError).variable === name;
      }
    });
    expect(required.length).toBeGreaterThanOrEqual(8);
    for (const name of required) expect(Object.keys(env), name).toContain(name);
    // Every variable the service is given is one config.ts reads (no typo goes unnoticed).
    const source = fs.readFileSync(path.join(ROOT, 'services/dispatcher/src/config.ts'), 'utf8');
    for (const name of Object.keys(env)) expect(source, name).toContain(`'${name}'`);

    expect(env.WORKER_SERVICE_ACCOUNT).toBe('${google_service_account.worker.email}');
    expect(env.PUSH_SERVICE_ACCOUNT).toBe('${google_service_account.push.email}');
    expect(env.OUTPUT_BUCKET).toBe('${google_storage_bucket.output.name}');
    expect(env.COMPLETIONS_TOPIC).toBe('${google_pubsub_topic.completions.name}');
    expect(env.JOB_EVENTS_TOPIC).toBe('${google_pubsub_topic.job_events.name}');
    expect(env.WORKER_JOB).toBe('${local.job_name}');
    expect(env.WORKER_IMAGE).toBe('${var.worker_image}');
    expect(env.AGENT_IMAGE).toBe('${var.agent_image}');
    expect(env.JOBS_CALLERS).toContain('var.jobs_callers');
    expect(env.JOBS_CALLERS).toContain('google_service_account.push.email');
    expect(env.VM_SPOT).toBe('${tostring(var.vm_spot)}');
    expect(env.VM_MACHINE_TYPE).toBe('${var.vm_machine_type}');
    // The task VMs' network (network.tf) and boot image, from the variables and resources.
    expect(env.VM_NETWORK).toBe('${local.vm_network_url}');
    expect(env.VM_SUBNETWORK).toBe('${local.vm_subnetwork_url}');
    expect(tf.locals.vm_network_url).toBe(
      'projects/${var.project_id}/global/networks/${google_compute_network.vms.name}',
    );
    expect(tf.locals.vm_subnetwork_url).toBe(
      'projects/${var.project_id}/regions/${var.region}/subnetworks/${google_compute_subnetwork.vms.name}',
    );
    expect(env.VM_EXTERNAL_IP).toBe('${tostring(var.vm_external_ip)}');
    expect(env.VM_IMAGE_FAMILY).toBe('${var.vm_image_family}');
    expect(env.VM_IMAGE_PROJECT).toBe('${var.vm_image_project}');
    expect(env.SHARED_URI).toBe('gs://${google_storage_bucket.shared.name}/');
    expect(env.REGION).toBe('${var.region}');
    expect(env.ZONE).toBe('${var.zone}');
    expect(env.VM_ZONES).toBe('${join(",", local.vm_zones)}');
    expect(env.GOOGLE_CLOUD_PROJECT).toBe('${var.project_id}');
    // The dead-letter settings name the resources pubsub.tf makes (the push subscriptions by their
    // local names: referring to them would be a cycle, as they push to the service).
    expect(env.DEAD_LETTER_SUBSCRIPTION).toBe('${google_pubsub_subscription.dead_letter.name}');
    expect(env.UPLOADS_TOPIC).toBe('${google_pubsub_topic.uploads.name}');
    expect(env.UPLOADS_SUBSCRIPTION).toBe('${local.uploads_subscription_name}');
    expect(env.COMPLETIONS_SUBSCRIPTION).toBe('${local.completions_subscription_name}');
    expect(resource('google_pubsub_subscription', 'uploads').name).toBe('${local.uploads_subscription_name}');
    expect(resource('google_pubsub_subscription', 'completions').name).toBe(
      '${local.completions_subscription_name}',
    );
    // Cloud Run sets PORT itself and refuses it in a service's env; PUSH_AUTH must stay on.
    expect(Object.keys(env)).not.toContain('PORT');
    expect(Object.keys(env)).not.toContain('PUSH_AUTH');
  });

  it('runs the worker job as the worker, one task, no retries', () => {
    const job = resource('google_cloud_run_v2_job', 'worker');
    expect(job.count).toBe('${local.create_job ? 1 : 0}');
    expect(job.name).toBe('${local.job_name}');
    const outer = nested(job, 'template');
    expect(outer.task_count).toBe(1);
    const inner = nested(outer, 'template');
    expect(inner.service_account).toBe('${google_service_account.worker.email}');
    expect(inner.max_retries).toBe(0);
    expect(inner.timeout).toBe('${var.worker_timeout_seconds}s');
    expect(tf.variables.worker_timeout_seconds!.default).toBe(3600);
    const container = nested(inner, 'containers');
    expect(container.image).toBe('${var.worker_image}');
    expect(nested(container, 'resources').limits).toEqual({
      cpu: '${var.worker_cpu}',
      memory: '${var.worker_memory}',
    });
    expect([tf.variables.worker_cpu!.default, tf.variables.worker_memory!.default]).toEqual(['2', '4Gi']);
    // The dispatcher is told the same, so that it sends what needs more to a VM.
    const env = tf.locals.dispatcher_env as Record<string, string>;
    expect([env.WORKER_JOB_CPU, env.WORKER_JOB_MEMORY, env.WORKER_JOB_TIMEOUT]).toEqual([
      '${var.worker_cpu}',
      '${var.worker_memory}',
      // Written as the job's own timeout is, so that both say the same.
      inner.timeout,
    ]);
    const defaults = { WORKER_JOB_CPU: '2', WORKER_JOB_MEMORY: '4Gi', WORKER_JOB_TIMEOUT: '3600s' };
    expect(parseConfig({ ...MINIMAL_DISPATCHER_ENV, ...defaults }).cloudRunJob).toEqual({
      cpu: 2,
      memoryBytes: 4 * 1024 ** 3,
      timeoutSeconds: 3600,
    });
  });
});

describe('Cloud Scheduler', () => {
  it('posts to /reap and /reconcile on their schedules with the push identity', () => {
    const job = resource('google_cloud_scheduler_job', 'maintenance');
    expect(job.for_each).toBe('${local.schedules}');
    const schedules = String(tf.locals.schedules);
    expect(schedules).toMatch(/local\.create_service \?/);
    expect(schedules).toMatch(/path\s*=\s*"\/reap",\s*schedule\s*=\s*var\.reaper_schedule/);
    expect(schedules).toMatch(/path\s*=\s*"\/reconcile",\s*schedule\s*=\s*var\.reconcile_schedule/);
    const target = nested(job, 'http_target');
    expect(target.http_method).toBe('POST');
    expect(target.uri).toBe('${google_cloud_run_v2_service.dispatcher[0].uri}${each.value.path}');
    expect(nested(target, 'oidc_token').service_account_email).toBe('${google_service_account.push.email}');
  });

  it('submits each declared scheduled job to POST /jobs with its request as the body', () => {
    const job = resource('google_cloud_scheduler_job', 'scheduled_jobs');
    expect(job.for_each).toBe('${local.create_service ? var.scheduled_jobs : {}}');
    expect(job.schedule).toBe('${each.value.schedule}');
    const target = nested(job, 'http_target');
    expect(target.uri).toBe('${google_cloud_run_v2_service.dispatcher[0].uri}/jobs');
    expect(target.body).toBe('${base64encode(jsonencode(each.value.request))}');
    expect(nested(target, 'oidc_token').audience).toBe('${local.service_url}');
    expect(tf.variables.scheduled_jobs).toBeDefined();
  });
});

describe('cloudbuild.yaml', () => {
  it('builds the three images from the repository root with their Dockerfiles and pushes them', () => {
    const build = parseYaml(fs.readFileSync(path.join(ROOT, 'cloudbuild.yaml'), 'utf8')) as {
      steps: { id?: string; name: string; args: string[] }[];
      images: string[];
      substitutions?: Record<string, string>;
      options?: { logging?: string };
    };
    const builds = build.steps.filter((s) => s.args[0] === 'build');
    const wanted = [
      { dockerfile: 'services/dispatcher/Dockerfile', image: '${_IMAGE_URI}/dispatcher:${_TAG}' },
      { dockerfile: 'jobs/worker/Dockerfile', image: '${_IMAGE_URI}/worker:${_TAG}' },
      { dockerfile: 'jobs/agent/Dockerfile', image: '${_IMAGE_URI}/agent:${_TAG}' },
    ];
    for (const { dockerfile, image } of wanted) {
      expect(fs.existsSync(path.join(ROOT, dockerfile)), dockerfile).toBe(true);
      const step = builds.find((s) => s.args[s.args.indexOf('-f') + 1] === dockerfile);
      expect(step, dockerfile).toBeDefined();
      expect(step!.args[step!.args.indexOf('-t') + 1]).toBe(image);
      expect(step!.args.at(-1), `${dockerfile} context`).toBe('.');
      expect(build.images).toContain(image);
    }
    // No default tag: every deployment names its build.
    expect(build.substitutions?._TAG).toBeUndefined();
    expect(build.substitutions?._IMAGE_URI).toBeUndefined();
    // A build run as a user-specified account must log to Cloud Logging (or a bucket of one's own).
    expect(build.options?.logging).toBe('CLOUD_LOGGING_ONLY');
  });
});
