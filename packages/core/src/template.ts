// What a job runs and on what: the two targets, the template routing fills in for a job, and the
// resources a request declares. Routing (routing/) decides them, cost/ prices them, the launchers
// run them; this file depends on none of them.

export type Target = 'cloud-run-job' | 'vm';

export interface Accelerator {
  type: string;
  count: number;
}

/** What a job says it needs: from the submitter, or from object metadata. */
export interface Resources {
  cpu?: number;
  memoryBytes?: number;
  gpu?: Accelerator;
  expectedSeconds?: number;
}

export interface JobTemplate {
  task?: string;
  image?: string;
  args: string[];
  env: Record<string, string>;
  cpu?: number;
  memoryBytes?: number;
  timeoutSeconds?: number;
  machineType?: string;
  spot: boolean;
  /**
   * A spot VM that no zone has capacity for is made as a standard VM instead (costlier, never
   * preempted), rather than waiting for spot capacity to come back.
   */
  standardIfNoSpot?: boolean;
  accelerator?: Accelerator;
}
