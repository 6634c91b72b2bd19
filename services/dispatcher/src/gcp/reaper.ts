// The reaper: a backstop so that no VM outlives its work. The agent deletes its VM when the task ends,
// and `maxRunDuration` deletes it after the timeout; this deletes what both missed (an agent that
// crashed or lost its rights, a VM whose job the ledger finished or never knew). `POST /reap` runs it,
// from Cloud Scheduler.
//
// Each run lists the pipeline's VMs in the zone, then reads their jobs (in that order: the dispatcher
// writes an attempt to the ledger before it creates its VM, so the jobs read are never older than the
// VMs listed), decides with `instancesToReap` from core, and asks Compute to delete each one chosen,
// without waiting for the operation. Runs are idempotent and may overlap: a VM already gone (404) is
// counted as such, not as an error.
import {
  DEFAULT_TASK_TIMEOUT_SECONDS,
  instancesToReap,
  isJobId,
  type Job,
  type Ledger,
  type PipelineInstance,
} from '@pipeline/core';
import type { protos } from '@google-cloud/compute';
import type { Logger } from 'pino';
import { apiErrorFacts, type InstancesClient } from './clients.ts';

type Instance = protos.google.cloud.compute.v1.IInstance;

export interface ComputeReaperSettings {
  project: string;
  /** The zone the pipeline's VMs run in (the launcher's). */
  zone: string;
  /** Every zone a VM may be made in (VM_ZONES, the launcher's fallback zones); default [zone]. */
  zones?: string[];
  /** The value of the `pipeline` label of this deployment's VMs; default 'true', as the launcher's. */
  pipelineLabel?: string;
  /** How long a VM may stay after its work is over, or while no job owns it; default 300. */
  graceSeconds?: number;
  /** For instances the ledger does not know; default 30 min (see ReapOptions.unknownGraceSeconds). */
  unknownGraceSeconds?: number;
  /** Added to a task's timeout for its deadline, as for the VM's maxRunDuration; default 600. */
  marginSeconds?: number;
  /** The timeout of a task whose template sets none; default 24 h, as the launcher's. */
  defaultTimeoutSeconds?: number;
  instances: () => Promise<Pick<InstancesClient, 'list' | 'delete'>>;
  ledger: Ledger;
  logger: Logger;
}

export interface ReapResult {
  /** The VMs this run asked Compute to delete, and why. */
  deleted: { name: string; reason: string }[];
  /** VMs it chose to delete that were gone before its request (their agent, or an overlapping run). */
  alreadyGone: string[];
  /** How many of the pipeline's VMs it left running. */
  kept: number;
  /** VMs it could not decide on (the ledger failed) or not delete; the next run tries again. */
  errors: { name: string; error: string }[];
}

// Compute's rule for label values: what may sit unquoted-safe inside the list filter.
const LABEL_VALUE = /^[a-z0-9_-]{0,63}$/;

export class ComputeReaper {
  private readonly settings: ComputeReaperSettings;
  private readonly pipelineLabel: string;

  constructor(settings: ComputeReaperSettings) {
    this.settings = settings;
    this.pipelineLabel = settings.pipelineLabel ?? 'true';
    if (!LABEL_VALUE.test(this.pipelineLabel)) {
      throw new Error(`${JSON.stringify(this.pipelineLabel)} is not a Compute label value`);
    }
  }

  async reap(now = new Date()): Promise<ReapResult> {
    const { project, zone, logger } = this.settings;
    const client = await this.settings.instances();
    // The API filters on the label; `instancesToReap` checks it again, so nothing else is ever touched.
    // Every zone a VM may have been made in: one left in a fallback zone is reaped there too.
    const listings = await Promise.all(
      (this.settings.zones ?? [zone]).map(async (listedZone) => {
        const [listed] = await client.list({
          project,
          zone: listedZone,
          filter: `labels.pipeline = "${this.pipelineLabel}"`,
        });
        return listed.map((instance) => pipelineInstance(instance, listedZone));
      }),
    );
    const ours = listings.flat().filter((vm) => vm.name !== '' && vm.labels.pipeline === this.pipelineLabel);

    const errors: ReapResult['errors'] = [];
    const { jobs, failed } = await this.readJobs(ours);
    const decidable = ours.filter((vm) => {
      const error = failed.get(vm.labels['job-id'] ?? '');
      if (error !== undefined) errors.push({ name: vm.name, error: `reading its job: ${error}` });
      return error === undefined;
    });
    const decisions = instancesToReap(decidable, jobs, now, {
      pipelineLabel: this.pipelineLabel,
      graceSeconds: this.settings.graceSeconds ?? 300,
      unknownGraceSeconds: this.settings.unknownGraceSeconds ?? 1800,
      defaultTimeoutSeconds: this.settings.defaultTimeoutSeconds ?? DEFAULT_TASK_TIMEOUT_SECONDS,
      marginSeconds: this.settings.marginSeconds ?? 600,
    });

    const result: ReapResult = {
      deleted: [],
      alreadyGone: [],
      kept: decidable.length - decisions.length,
      errors,
    };
    // A handful of VMs at most in practice: the deletes go out together.
    await Promise.all(
      decisions.map(async ({ instance, reason }) => {
        const log = {
          instance: instance.name,
          zone: instance.zone,
          jobId: instance.labels['job-id'],
          reason,
        };
        try {
          await client.delete({ project, zone: instance.zone, instance: instance.name });
          result.deleted.push({ name: instance.name, reason });
          logger.warn(log, `reaper deleted VM ${instance.name}: ${reason}`);
        } catch (err) {
          const facts = apiErrorFacts(err);
          if (facts.httpStatus === 404 || facts.reasons.includes('notFound')) {
            result.alreadyGone.push(instance.name);
            logger.info(log, `reaper found VM ${instance.name} already gone`);
            return;
          }
          result.errors.push({ name: instance.name, error: facts.message });
          logger.error({ ...log, err }, `reaper failed to delete VM ${instance.name}`);
        }
      }),
    );
    logger.info(
      {
        deleted: result.deleted.length,
        alreadyGone: result.alreadyGone.length,
        kept: result.kept,
        errors: errors.length,
      },
      'reaper run done',
    );
    return result;
  }

  /** The job of each VM's job-id label (undefined: the ledger has none), and the lookups that failed. */
  private async readJobs(vms: PipelineInstance[]) {
    const ids = new Set(vms.map((vm) => vm.labels['job-id']).filter((id) => id !== undefined && isJobId(id)));
    const jobs = new Map<string, Job | undefined>();
    const failed = new Map<string, string>();
    await Promise.all(
      [...ids].map(async (id) => {
        try {
          jobs.set(id, await this.settings.ledger.get(id));
        } catch (err) {
          // Never read as "no such job": that would delete a VM whose job may be running.
          failed.set(id, err instanceof Error ? err.message : String(err));
        }
      }),
    );
    return { jobs, failed };
  }
}

/** What the decision needs of a listed instance; its zone is the last part of Compute's zone URL. */
function pipelineInstance(instance: Instance, listedZone: string): PipelineInstance {
  return {
    name: instance.name ?? '',
    zone: instance.zone?.split('/').at(-1) || listedZone,
    labels: { ...(instance.labels ?? {}) },
    createdAt: instance.creationTimestamp ?? '',
    status: instance.status ?? '',
  };
}
