/**
 * Builds and starts the service from a configuration: database, channels, domain services, the
 * gRPC and HTTP listeners and the sweeper. Used by main.ts, the tests and the benchmark, so all
 * three run the same wiring.
 */
import type { AddressInfo } from "node:net";
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import { createCallbackRetention } from "./callbacks/callback-retention.js";
import { createCallbackService } from "./callbacks/callback-service.js";
import { createAlipayChannel } from "./channels/alipay/alipay-channel.js";
import { createCardChannel } from "./channels/card/card-channel.js";
import { createWechatPayChannel } from "./channels/wechatpay/wechatpay-channel.js";
import type { PaymentChannel } from "./channels/channel.js";
import { ChannelRegistry } from "./channels/registry.js";
import type { Config } from "./config.js";
import { type Database, openDatabase, poolUse } from "./db/database.js";
import { loggableError } from "./db/database-errors.js";
import { createUnitOfWork, type UnitOfWork } from "./db/unit-of-work.js";
import { createEventFeed, type EventFeed } from "./events/event-feed.js";
import { createNatsRelay, type NatsRelay } from "./events/nats-relay.js";
import { SecretBox } from "./merchants/credentials.js";
import { createMerchantService } from "./merchants/merchant-service.js";
import { createPaymentService } from "./payments/payment-service.js";
import { createPaymentSweeper, type PaymentSweeper } from "./payments/payment-sweeper.js";
import { createPayoutService, type PayoutService } from "./payouts/payout-service.js";
import { createSettlementScheduler, type SettlementScheduler } from "./settlement/settlement-scheduler.js";
import { createSettlementService, type SettlementService as SettlementOrders } from "./settlement/settlement-service.js";
import { type Access, accessTable, METHOD_ACCESS, MerchantAuthenticator } from "./rpc/auth.js";
import { createRpcInterceptors } from "./rpc/interceptors.js";
import { createGrpcServer, listenGrpc, setGrpcServing, shutdownGrpc } from "./rpc/grpc-server.js";
import { createHttpServer, type HttpListener } from "./rpc/http-server.js";
import { createTlsSource } from "./rpc/tls.js";
import { createMerchantRpc } from "./rpc/merchant-rpc.js";
import { createPaymentRpc } from "./rpc/payment-rpc.js";
import { createPayoutRpc } from "./rpc/payout-rpc.js";
import { createReconciliationRpc } from "./rpc/reconciliation-rpc.js";
import { createReconciliationService } from "./reconciliation/reconciliation-service.js";
import { createSettlementOrderRpc } from "./rpc/settlement-order-rpc.js";
import { createSettlementRpc } from "./rpc/settlement-rpc.js";
import { createRefundService } from "./refunds/refund-service.js";
import { createRefundSweeper, type RefundSweeper } from "./refunds/refund-sweeper.js";
import { createAdminRpc } from "./rpc/admin-rpc.js";
import { createEventRpc } from "./rpc/event-rpc.js";
import { createWebhookRpc } from "./rpc/webhook-rpc.js";
import { createWebhookDispatcher, type WebhookDispatcher } from "./webhooks/webhook-dispatcher.js";
import { observeCallbacks } from "./observability/callback-observer.js";
import { type ChannelCallSink, observeChannel } from "./observability/channel-observer.js";
import { type Logger, logFunctions } from "./observability/logger.js";
import { createMetricsListener, type MetricsListener } from "./observability/metrics-listener.js";
import { createTelemetry, type Telemetry } from "./observability/telemetry.js";
import { readBacklogs } from "./observability/backlogs.js";
import { createChannelCallRecorder } from "./channel-calls/channel-call-recorder.js";
import type { Tracing } from "./observability/tracing.js";
import { createTelemetryInterceptor } from "./rpc/telemetry-interceptor.js";
import { AdminService } from "../gen/payments/v1/admin_service_pb.js";
import { SettlementService } from "../gen/payments/v1/settlement_service_pb.js";
import { MerchantService } from "../gen/payments/v1/merchant_service_pb.js";
import { PaymentService } from "../gen/payments/v1/payment_service_pb.js";

/** The configuration with the secrets main.ts resolves first (generated ones in embedded mode). */
export type ResolvedConfig = Readonly<Config & { adminToken: string; dataEncryptionKey: string }>;

export interface AppOptions {
  config: ResolvedConfig;
  /** Extra or replacement channels (tests); by default built from the config. */
  channels?: PaymentChannel[];
  /** Start the background sweeper loop (tests drive `sweeper.runOnce()` themselves). */
  runSweeper?: boolean;
  /**
   * Start the event loops: the feed (numbering events, feeding streams), webhook deliveries and the
   * bus relay (default: as `runSweeper`; tests drive their `runOnce()` themselves).
   */
  runEventWorkers?: boolean;
  /** Replaces the logger the configuration describes (tests read or silence it). */
  logger?: Logger;
  /** Replaces the tracing the configuration describes (tests shorten the export delay). */
  tracing?: Tracing;
  /** Where channel call records go; by default the batched writer to `channel_call`. */
  channelCallSink?: ChannelCallSink;
  /** How often the TLS files are checked for a rotation (default 10 s; 0 = only on `reloadTls()`). */
  tlsReloadIntervalMs?: number;
  /** The clock reconciliation reads "today" from (tests move it forward to reconcile the day they paid in). */
  reconciliationClock?: () => Date;
  /** Served next to the built-in services, behind the same interceptors (tests: a streaming RPC). */
  extraServices?: ReadonlyArray<ExtraService>;
}

/** A service for {@link AppOptions.extraServices}, with the credential each of its RPCs takes. */
export interface ExtraService {
  service: DescService;
  // biome-ignore lint/suspicious/noExplicitAny: services of different types
  impl: Partial<ServiceImpl<any>>;
  access: ReadonlyArray<readonly [DescMethod, Access]>;
}

export interface App {
  db: Database;
  /** Sessions and transactions for the domain code; tests read through it too. */
  uow: UnitOfWork;
  grpcPort: number;
  httpPort: number;
  /** Base URL of the HTTP listener (`https://` when TLS is on). */
  httpUrl: string;
  sweeper: PaymentSweeper;
  refundSweeper: RefundSweeper;
  /** Settlement accounts and payouts (their sweeper pass is `payouts.runOnce()`). */
  payouts: PayoutService;
  /** Settlement orders: the daily run, on request, reads. */
  settlements: SettlementOrders;
  /** The daily settlement run under the job lease (the sweeper tick calls `runIfDue()`). */
  settlementScheduler: SettlementScheduler;
  /** The event feed: numbers committed events, feeds this replica's streams. */
  events: EventFeed;
  /** Webhook deliveries to merchants. */
  webhooks: WebhookDispatcher;
  /** The NATS JetStream relay; undefined unless `EVENTS_NATS_URL` is set. */
  relay?: NatsRelay;
  /** Logs, metrics and traces. */
  telemetry: Telemetry;
  /** The port of the separate `/metrics` listener when `METRICS_PORT` is set. */
  metricsPort?: number;
  /**
   * Reads the TLS certificate, key and client CA files again (e.g. on SIGHUP) and, when they changed and
   * are valid, serves new connections on both listeners with them; returns whether it switched.
   * False without TLS.
   */
  reloadTls(): boolean;
  /** Drains in-flight calls (up to the grace time), stops the sweeper, closes the database. */
  stop(): Promise<void>;
}

export function buildChannels(config: AppOptions["config"]): PaymentChannel[] {
  const channels: PaymentChannel[] = [];
  const timeoutMs = config.channelTimeoutMs;
  if (config.alipay) channels.push(createAlipayChannel({ ...config.alipay, timeoutMs }));
  if (config.wechatpay) channels.push(createWechatPayChannel({ ...config.wechatpay, timeoutMs }));
  if (config.card) channels.push(createCardChannel({ ...config.card, timeoutMs }));
  return channels;
}

export async function startApp(options: AppOptions): Promise<App> {
  const { config } = options;
  const telemetry = createTelemetry(config.observability, { logger: options.logger, tracing: options.tracing });
  const { log, logError: logRaw } = logFunctions(telemetry.logger);
  // Database errors carry the statement's values; logs get its shape only.
  const logError = (message: string, error: unknown) => logRaw(message, loggableError(error));

  // Read first: unusable TLS files stop the start before anything is opened.
  const tls = config.tls
    ? createTlsSource(config.tls, {
        reloadIntervalMs: options.tlsReloadIntervalMs,
        onError: (error) => logError("TLS files changed but cannot be used; keeping the previous certificate:", error.message),
        onReload: () => log("TLS certificate reloaded"),
      })
    : undefined;
  const db = await openDatabase({ url: config.databaseUrl, dataDir: config.dataDir });
  const uow = createUnitOfWork(db, { tracing: telemetry.tracing });
  telemetry.metrics.setBacklogSource(() => readBacklogs(uow));
  telemetry.metrics.setPoolSource(() => poolUse(db));
  const channelCalls = createChannelCallRecorder({
    uow,
    logger: telemetry.logger,
    metrics: telemetry.metrics,
    retentionDays: config.observability.channelCallRetentionDays,
  });
  const channels = new ChannelRegistry(
    (options.channels ?? buildChannels(config)).map((channel) => observeChannel(channel, { ...telemetry, sink: options.channelCallSink ?? channelCalls })),
  );
  // One sealing key for merchants' webhook secrets and settlement accounts.
  const secrets = new SecretBox(config.dataEncryptionKey);
  const merchants = createMerchantService(secrets, config.notifyUrls, {
    apiKeyCacheTtlMs: config.apiKeyCacheTtlMs,
  });
  const merchantAuth = new MerchantAuthenticator(merchants, config.rateLimit);
  const payments = createPaymentService({
    uow,
    channels,
    publicBaseUrl: config.publicBaseUrl,
    notifyUrls: config.notifyUrls,
    finalPaymentChannelQueries: config.finalPaymentChannelQueries,
  });
  const refunds = createRefundService({ uow, channels, publicBaseUrl: config.publicBaseUrl });
  const leaseMs = config.channelTimeoutMs * 3;
  const payouts = createPayoutService({ uow, channels, secrets, log, leaseMs });
  const callbacks = createCallbackService({ uow, channels, log, payouts });
  const settlements = createSettlementService({ uow, payouts, schedule: config.settlement });
  const settlementScheduler = createSettlementScheduler({ uow, settlements, schedule: config.settlement, log });
  const sweeper = createPaymentSweeper({ uow, channels, log, leaseMs });
  const refundSweeper = createRefundSweeper({ uow, channels, publicBaseUrl: config.publicBaseUrl, log, leaseMs });
  const events = createEventFeed({ uow, config: config.events, retainUntilReadBy: config.nats ? ["webhooks", "nats"] : ["webhooks"], log, logError });
  const webhooks = createWebhookDispatcher({ uow, secrets, config: config.webhooks, events: config.events, notifyUrls: config.notifyUrls, log, logError, telemetry });
  const relay = config.nats ? createNatsRelay({ uow, config: config.nats, log, logError, pollIntervalMs: config.events.pollIntervalMs }) : undefined;
  const webhookRpc = createWebhookRpc({ uow, merchants, config: config.webhooks });
  const reconciliation = createReconciliationService({
    uow,
    channels,
    payments,
    feeRates: config.channelFeeRates,
    log,
    now: options.reconciliationClock,
    onRunEnd(channel, ended) {
      if ("error" in ended) {
        telemetry.metrics.reconciliationRuns.inc({ channel, outcome: "error" });
        return;
      }
      const { run } = ended;
      const discrepancies = run.missingOnOurSide + run.missingOnChannelSide + run.amountMismatch + run.statusMismatch + run.feeMismatch;
      telemetry.metrics.reconciliationRuns.inc({ channel, outcome: "ok" });
      telemetry.metrics.reconciliationDiscrepancies.inc({ channel }, Number(discrepancies));
      telemetry.logger.info(
        { reconciliation: run.id, channel, bill_date: run.billDate, lines: Number(run.linesTotal), matched: Number(run.matched), discrepancies: Number(discrepancies) },
        "reconciliation run",
      );
    },
  });

  const services = [
    {
      service: MerchantService,
      impl: { ...createMerchantRpc(uow, merchants), ...webhookRpc.admin } satisfies ServiceImpl<typeof MerchantService>,
    },
    {
      service: PaymentService,
      impl: {
        ...createPaymentRpc(uow, payments, refunds),
        ...createEventRpc({ uow, feed: events, config: config.events }),
        ...webhookRpc.merchant,
      } satisfies ServiceImpl<typeof PaymentService>,
    },
    {
      service: SettlementService,
      impl: createSettlementRpc(uow, {
        orders: createSettlementOrderRpc(uow, settlements),
        payouts: createPayoutRpc(uow, payouts),
        reconciliation: createReconciliationRpc(uow, reconciliation),
      }),
    },
    { service: AdminService, impl: createAdminRpc(uow, settlements) },
    ...(options.extraServices ?? []),
  ] as const;
  const interceptors = [createTelemetryInterceptor(telemetry), ...createRpcInterceptors({
    adminToken: config.adminToken,
    merchants: merchantAuth,
    session: () => uow.session(),
    access: new Map([...METHOD_ACCESS, ...accessTable((options.extraServices ?? []).flatMap((extra) => extra.access))]),
    log,
    logError,
  })];

  let draining = false;
  const callbackRetention = createCallbackRetention({
    uow,
    retentionDays: config.callbackLogRetentionDays,
    shouldContinue: () => !draining,
    log,
  });
  const grpc = createGrpcServer({ services, interceptors, maxReceiveMessageLength: config.maxRequestBytes, limits: config.grpcLimits });
  const grpcPort = await listenGrpc(grpc, config.host, config.grpcPort, tls?.grpcCredentials());
  const http = createHttpServer({
    services,
    interceptors,
    callbacks: observeCallbacks(callbacks, telemetry),
    metrics: config.observability.metricsToken ? { token: config.observability.metricsToken, render: () => telemetry.metrics.render() } : undefined,
    maxRequestBytes: config.maxRequestBytes,
    isHealthy: async () => !draining && (await db.orm.isConnected()),
    limits: config.httpLimits,
    tls,
  });
  const httpPort = await listenHttp(http, config.host, config.httpPort);
  let metricsListener: MetricsListener | undefined;
  if (config.observability.metricsPort !== undefined) {
    metricsListener = createMetricsListener(() => telemetry.metrics.render());
    await listenHttp(metricsListener, config.host, config.observability.metricsPort);
  }

  /** One span, one log line and the sweep metrics per pass of a sweeper. */
  const observeSweep = (sweeperName: string, pass: () => Promise<object>) =>
    telemetry.tracing.span(`sweep ${sweeperName}`, {}, async (span) => {
      const started = performance.now();
      try {
        const result = (await pass()) as Record<string, unknown>;
        telemetry.metrics.sweepPasses.inc({ sweeper: sweeperName, outcome: "ok" });
        for (const [key, value] of Object.entries(result)) {
          if (typeof value === "number" && value > 0 && key !== "claimed") telemetry.metrics.sweepItems.inc({ sweeper: sweeperName, result: key }, value);
        }
        // A pass that found nothing is the common case: debug, so an idle service's log stays quiet.
        const level = typeof result.claimed === "number" && result.claimed === 0 ? "debug" : "info";
        telemetry.logger[level]({ sweep: sweeperName, ...result, latency_ms: Math.round(performance.now() - started), trace_id: span.traceId }, "sweep");
        return result;
      } catch (error) {
        telemetry.metrics.sweepPasses.inc({ sweeper: sweeperName, outcome: "error" });
        throw error;
      }
    });

  let sweepTimer: NodeJS.Timeout | undefined;
  let sweeping: Promise<unknown> = Promise.resolve();
  let settling: Promise<unknown> | undefined;
  if (options.runSweeper ?? true) {
    const tick = () => {
      // The daily settlement may run for minutes: beside the sweeps, not inside their pass.
      settling ??= settlementScheduler
        .runIfDue()
        // The scheduler logs each run; here they are counted.
        .then((runs) => telemetry.metrics.settlementRuns.inc({ outcome: "ok" }, runs.length))
        .catch((error) => {
          telemetry.metrics.settlementRuns.inc({ outcome: "error" });
          logError("settlement run failed", error);
        })
        .finally(() => {
          settling = undefined;
        });
      sweeping = Promise.all([
        observeSweep("payments", () => sweeper.runOnce()),
        observeSweep("refunds", () => refundSweeper.runOnce()),
        observeSweep("payouts", () => payouts.runOnce()),
        callbackRetention.runIfDue(),
        channelCalls.retainIfDue(),
      ])
        .catch((error) => logError("sweeper pass failed", error))
        .finally(() => {
          if (!draining) sweepTimer = setTimeout(tick, config.sweepIntervalMs);
        });
    };
    sweepTimer = setTimeout(tick, config.sweepIntervalMs);
  }

  channelCalls.start();
  if (options.runEventWorkers ?? options.runSweeper ?? true) {
    events.start();
    webhooks.start();
    relay?.start();
  }

  const host = config.host === "0.0.0.0" || config.host === "::" ? "127.0.0.1" : config.host;
  return {
    db,
    uow,
    grpcPort,
    httpPort,
    httpUrl: `${tls ? "https" : "http"}://${host}:${httpPort}`,
    sweeper,
    refundSweeper,
    payouts,
    settlements,
    settlementScheduler,
    events,
    webhooks,
    relay,
    telemetry,
    metricsPort: metricsListener ? (metricsListener.address() as AddressInfo).port : undefined,
    reloadTls: () => tls?.reload() ?? false,
    async stop() {
      draining = true;
      tls?.close();
      setGrpcServing(grpc, false);
      clearTimeout(sweepTimer);
      settlementScheduler.stop();
      await Promise.all([
        shutdownGrpc(grpc, config.shutdownGraceMs),
        closeHttp(http, config.shutdownGraceMs),
        metricsListener && closeHttp(metricsListener, config.shutdownGraceMs),
        sweeping,
        settling,
        events.stop(),
        webhooks.stop(),
        relay?.stop(),
      ]);
      // After everything that calls channels has stopped, before the database closes.
      await channelCalls.stop();
      await db.close();
      await telemetry.tracing.shutdown();
      telemetry.logger.flush();
    },
  };
}

function listenHttp(server: HttpListener, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/** Stops accepting, lets in-flight requests finish, then cuts what is left after the grace time. */
function closeHttp(server: HttpListener, graceMs: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => server.closeAllConnections(), graceMs);
    server.close(() => {
      clearTimeout(timer);
      resolve();
    });
    server.closeIdleConnections();
  });
}
