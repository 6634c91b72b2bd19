// How long each routing rule's runs take, learned from the ledger's SUCCEEDED jobs: the context the
// router prices with (packages/core: fitDurations, route). Routing is synchronous, so the models are
// fitted ahead: refresh() reloads every rule's history when the last load is older than `maxAgeMs`,
// and a rule with no history yet (or a ledger that failed to answer) keeps its prior.
import {
  DEFAULT_PRICES,
  DEFAULT_PRIOR,
  estimateDuration,
  finishedRunOf,
  fitDurations,
  type DurationModel,
  type Ledger,
  type CloudRunJobShape,
  type RouteContext,
  type RoutingConfig,
} from '@pipeline/core';
import type { Logger } from 'pino';

/** Runs per rule the fit reads: the estimator keeps the most recent 200 anyway. */
const HISTORY = 200;

export class DurationEstimates {
  private readonly models = new Map<string, DurationModel>();
  private loadedAt = -Infinity;
  private loading: Promise<void> | undefined;
  private readonly ledger: Ledger;
  private readonly routing: RoutingConfig;
  private readonly cloudRunJob: CloudRunJobShape | undefined;
  private readonly logger: Logger;
  private readonly maxAgeMs: number;
  private readonly now: () => number;

  constructor(options: {
    ledger: Ledger;
    routing: RoutingConfig;
    cloudRunJob?: CloudRunJobShape;
    logger: Logger;
    maxAgeMs?: number;
    now?: () => number;
  }) {
    this.ledger = options.ledger;
    this.routing = options.routing;
    this.cloudRunJob = options.cloudRunJob;
    this.logger = options.logger;
    this.maxAgeMs = options.maxAgeMs ?? 60_000;
    this.now = options.now ?? Date.now;
  }

  /** The router's context: the config's prices, each rule's model (or its prior), the Cloud Run job. */
  get context(): RouteContext {
    return {
      prices: this.routing.prices ?? DEFAULT_PRICES,
      ...(this.cloudRunJob === undefined ? {} : { cloudRunJob: this.cloudRunJob }),
      estimate: (rule, inputBytes) =>
        estimateDuration(
          this.models.get(rule.name) ?? fitDurations([], rule.prior ?? DEFAULT_PRIOR),
          inputBytes ?? 0,
        ),
    };
  }

  /**
   * Starts reloading the histories if they are older than maxAgeMs, without waiting: the intake
   * routes with what is loaded (or the priors) and never waits for the ledger's history.
   */
  refreshSoon(): void {
    void this.refresh();
  }

  /** Reloads the histories if they are older than maxAgeMs; one load at a time. */
  async refresh(): Promise<void> {
    if (this.now() - this.loadedAt < this.maxAgeMs) return;
    this.loading ??= this.load().finally(() => {
      this.loading = undefined;
    });
    return this.loading;
  }

  private async load(): Promise<void> {
    const rules = this.routing.rules.filter((rule) => rule.target !== 'ignore');
    try {
      const histories = await Promise.all(rules.map((rule) => this.ledger.succeeded(rule.name, HISTORY)));
      rules.forEach((rule, i) => {
        // Newest first from the ledger; the estimator takes them oldest first.
        const samples = histories[i].flatMap((job) => finishedRunOf(job) ?? []).reverse();
        this.models.set(rule.name, fitDurations(samples, rule.prior ?? DEFAULT_PRIOR));
      });
    } catch (err) {
      this.logger.warn({ err }, 'reading run history failed: estimates use what they had, or their prior');
    }
    this.loadedAt = this.now();
  }
}
