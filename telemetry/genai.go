package telemetry

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"
	"go.opentelemetry.io/otel/semconv/v1.41.0/genaiconv"
)

// GenAISchemaURL is the schema of the OpenTelemetry GenAI semantic
// conventions Warden's spans and metrics follow: v1.41.0, the latest the Go
// semconv module carries. The names below are the semconv module's own
// constants, gathered here so that the worker and the tests use one list.
// Warden emitted no GenAI conventions before, so it emits the latest
// experimental ones (what OTEL_SEMCONV_STABILITY_OPT_IN=
// gen_ai_latest_experimental asks of older instrumentations) unasked.
const GenAISchemaURL = semconv.SchemaURL

// Values of gen_ai.* attributes (variables, as the semconv module's are).
var (
	// OperationChat and OperationExecuteTool are the gen_ai.operation.name
	// of a model call and of a tool execution; the spans are named
	// "chat {model}" and "execute_tool {tool}".
	OperationChat        = string(genaiconv.OperationNameChat)
	OperationExecuteTool = string(genaiconv.OperationNameExecuteTool)

	// ToolTypeFunction is the gen_ai.tool.type of Warden's tools: the
	// model asks for them as functions and Warden runs them.
	ToolTypeFunction = "function"
)

// GenAI semantic-convention attribute keys.
const (
	AttrOperationName         = semconv.GenAIOperationNameKey
	AttrProviderName          = semconv.GenAIProviderNameKey
	AttrRequestModel          = semconv.GenAIRequestModelKey
	AttrRequestMaxTokens      = semconv.GenAIRequestMaxTokensKey
	AttrResponseModel         = semconv.GenAIResponseModelKey
	AttrResponseID            = semconv.GenAIResponseIDKey
	AttrResponseFinishReasons = semconv.GenAIResponseFinishReasonsKey
	AttrUsageInputTokens      = semconv.GenAIUsageInputTokensKey
	AttrUsageOutputTokens     = semconv.GenAIUsageOutputTokensKey
	AttrTokenType             = semconv.GenAITokenTypeKey
	AttrToolName              = semconv.GenAIToolNameKey
	AttrToolCallID            = semconv.GenAIToolCallIDKey
	AttrToolType              = semconv.GenAIToolTypeKey
	AttrToolDescription       = semconv.GenAIToolDescriptionKey
	AttrErrorType             = semconv.ErrorTypeKey
)

// Warden's own attributes, beside the GenAI ones.
const (
	// AttrDecision is the policy verdict (allow, deny, require_approval).
	AttrDecision = attribute.Key("warden.decision")
	// AttrRisk is the risk the policy assessed (low, medium, high, critical).
	AttrRisk = attribute.Key("warden.risk")
	// AttrApprovalRequestID names the approval request a call ran under.
	AttrApprovalRequestID = attribute.Key("warden.approval.request_id")
	// AttrApprovalWait is the seconds from approval requested to decided.
	AttrApprovalWait = attribute.Key("warden.approval.wait_seconds")
	// AttrCostUSD is a model call's spend in US dollars at the catalog's
	// prices (absent for unpriced models).
	AttrCostUSD = attribute.Key("warden.cost_usd")
)

// The semconv's recommended bucket boundaries.
var (
	tokenBuckets    = []float64{1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864}
	durationBuckets = []float64{0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92}
)

// GenAI holds the GenAI semantic-convention metrics of model calls:
// gen_ai.client.token.usage (by gen_ai.token.type) and
// gen_ai.client.operation.duration.
type GenAI struct {
	tokens   genaiconv.ClientTokenUsage
	duration genaiconv.ClientOperationDuration
}

// NewGenAI creates the GenAI instruments on mp's meter of the worker.
func NewGenAI(mp metric.MeterProvider) (*GenAI, error) {
	m := mp.Meter("github.com/wardenhq/warden/worker", metric.WithSchemaURL(GenAISchemaURL))
	tokens, err := genaiconv.NewClientTokenUsage(m, metric.WithExplicitBucketBoundaries(tokenBuckets...))
	if err != nil {
		return nil, fmt.Errorf("gen_ai.client.token.usage: %w", err)
	}
	duration, err := genaiconv.NewClientOperationDuration(m, metric.WithExplicitBucketBoundaries(durationBuckets...))
	if err != nil {
		return nil, fmt.Errorf("gen_ai.client.operation.duration: %w", err)
	}
	return &GenAI{tokens: tokens, duration: duration}, nil
}

// ModelCall describes one finished model call for RecordModelCall.
type ModelCall struct {
	Provider      string
	RequestModel  string
	ResponseModel string
	InputTokens   int
	OutputTokens  int
	Seconds       float64
	// ErrorType is the error.type of a failed call ("" when it succeeded).
	ErrorType string
}

// RecordModelCall records a call's duration and, when it succeeded, its
// input and output tokens. A nil *GenAI records nothing.
func (g *GenAI) RecordModelCall(ctx context.Context, c ModelCall) {
	if g == nil {
		return
	}
	op, provider := genaiconv.OperationNameChat, genaiconv.ProviderNameAttr(c.Provider)
	attrs := []attribute.KeyValue{AttrRequestModel.String(c.RequestModel)}
	if c.ResponseModel != "" {
		attrs = append(attrs, AttrResponseModel.String(c.ResponseModel))
	}
	if c.ErrorType != "" {
		g.duration.Record(ctx, c.Seconds, op, provider, append(attrs, AttrErrorType.String(c.ErrorType))...)
		return
	}
	g.duration.Record(ctx, c.Seconds, op, provider, attrs...)
	g.tokens.Record(ctx, int64(c.InputTokens), op, provider, genaiconv.TokenTypeInput, attrs...)
	g.tokens.Record(ctx, int64(c.OutputTokens), op, provider, genaiconv.TokenTypeOutput, attrs...)
}

// NewPrometheusReader is a metric reader that serves the OpenTelemetry
// metrics from reg, beside the Prometheus ones (gen_ai.client.token.usage
// becomes gen_ai_client_token_usage_bucket/_sum/_count with the attributes
// as labels, dots turned into underscores).
func NewPrometheusReader(reg prometheus.Registerer) (sdkmetric.Reader, error) {
	exp, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutTargetInfo(), otelprom.WithoutScopeInfo())
	if err != nil {
		return nil, fmt.Errorf("prometheus bridge for the GenAI metrics: %w", err)
	}
	return exp, nil
}

// NewOTLPMetricReader is a reader that pushes the OpenTelemetry metrics to
// an OTLP/HTTP collector every minute (OTEL_METRIC_EXPORT_INTERVAL
// overrides). The exporter reads the standard variables itself
// (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_METRICS_ENDPOINT,
// OTEL_EXPORTER_OTLP_HEADERS, ...).
func NewOTLPMetricReader(ctx context.Context) (sdkmetric.Reader, error) {
	exp, err := otlpmetrichttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("otlp metric exporter: %w", err)
	}
	return sdkmetric.NewPeriodicReader(exp), nil
}

// NewMeterProvider returns a meter provider with the worker's resource
// (as NewOTLPTracerProvider's) reading through readers.
func NewMeterProvider(ctx context.Context, readers ...sdkmetric.Reader) *sdkmetric.MeterProvider {
	opts := []sdkmetric.Option{sdkmetric.WithResource(workerResource(ctx))}
	for _, r := range readers {
		opts = append(opts, sdkmetric.WithReader(r))
	}
	return sdkmetric.NewMeterProvider(opts...)
}

// workerResource is the default resource with service.name warden-worker,
// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES winning over it.
func workerResource(ctx context.Context) *resource.Resource {
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(semconv.ServiceName(ServiceName)))
	if err != nil {
		res = resource.Default()
	}
	if env, err := resource.New(ctx, resource.WithFromEnv()); err == nil {
		if merged, err := resource.Merge(res, env); err == nil {
			res = merged
		}
	}
	return res
}
