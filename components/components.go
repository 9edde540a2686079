// Package components lists the factories of the otelcol-kestrel distribution. It is the
// hand-kept twin of the components.go that ocb generates into _build from
// builder-config.yaml, so that tests in this module can load real configurations with
// exactly the components the binary has. components_test.go fails when the two differ.
package components

import (
	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/healthcheckextension"
	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/pprofextension"
	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/filestorage"
	"github.com/open-telemetry/opentelemetry-collector-contrib/processor/k8sattributesprocessor"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/debugexporter"
	"go.opentelemetry.io/collector/exporter/nopexporter"
	"go.opentelemetry.io/collector/exporter/otlpexporter"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/zpagesextension"
	"go.opentelemetry.io/collector/otelcol"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/batchprocessor"
	"go.opentelemetry.io/collector/processor/memorylimiterprocessor"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"

	"github.com/kestrelai/otelcol-kestrel/exporter/kestrelexporter"
	"github.com/kestrelai/otelcol-kestrel/extension/kestrelcommand"
	"github.com/kestrelai/otelcol-kestrel/processor/flowmergeprocessor"
	"github.com/kestrelai/otelcol-kestrel/processor/metricsstoreprocessor"
	"github.com/kestrelai/otelcol-kestrel/receiver/envoyalsreceiver"
	"github.com/kestrelai/otelcol-kestrel/receiver/hubblereceiver"
	"github.com/kestrelai/otelcol-kestrel/receiver/k8sinventoryreceiver"
	"github.com/kestrelai/otelcol-kestrel/receiver/k8sriskreceiver"
	"github.com/kestrelai/otelcol-kestrel/receiver/kestreltoolsreceiver"
	"github.com/kestrelai/otelcol-kestrel/telemetry/kestreltelemetry"
)

// The modules of builder-config.yaml, without versions: those live in go.mod and the
// manifest, and components_test.go keeps the two equal. ocb's generated twin records
// "module version" in the Factories' module maps; this list, used only by tests, records
// the module.
const (
	modOTLPReceiver   = "go.opentelemetry.io/collector/receiver/otlpreceiver"
	modMemoryLimiter  = "go.opentelemetry.io/collector/processor/memorylimiterprocessor"
	modBatch          = "go.opentelemetry.io/collector/processor/batchprocessor"
	modK8sAttributes  = "github.com/open-telemetry/opentelemetry-collector-contrib/processor/k8sattributesprocessor"
	modDebugExporter  = "go.opentelemetry.io/collector/exporter/debugexporter"
	modOTLPExporter   = "go.opentelemetry.io/collector/exporter/otlpexporter"
	modNopExporter    = "go.opentelemetry.io/collector/exporter/nopexporter"
	modZPages         = "go.opentelemetry.io/collector/extension/zpagesextension"
	modHealthCheck    = "github.com/open-telemetry/opentelemetry-collector-contrib/extension/healthcheckextension"
	modPprof          = "github.com/open-telemetry/opentelemetry-collector-contrib/extension/pprofextension"
	modFileStorage    = "github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/filestorage"
	modOtelcolKestrel = "github.com/kestrelai/otelcol-kestrel"
)

// entry pairs a factory with the module it comes from.
type entry[F component.Factory] struct {
	factory F
	module  string
}

// Components returns the factories built into otelcol-kestrel.
func Components() (otelcol.Factories, error) {
	var err error
	factories := otelcol.Factories{Telemetry: kestreltelemetry.NewFactory()}

	factories.Extensions, factories.ExtensionModules, err = makeMaps(
		entry[extension.Factory]{zpagesextension.NewFactory(), modZPages},
		entry[extension.Factory]{healthcheckextension.NewFactory(), modHealthCheck},
		entry[extension.Factory]{pprofextension.NewFactory(), modPprof},
		entry[extension.Factory]{filestorage.NewFactory(), modFileStorage},
		entry[extension.Factory]{kestrelcommand.NewFactory(), modOtelcolKestrel},
	)
	if err != nil {
		return otelcol.Factories{}, err
	}

	factories.Receivers, factories.ReceiverModules, err = makeMaps(
		entry[receiver.Factory]{otlpreceiver.NewFactory(), modOTLPReceiver},
		entry[receiver.Factory]{hubblereceiver.NewFactory(), modOtelcolKestrel},
		entry[receiver.Factory]{envoyalsreceiver.NewFactory(), modOtelcolKestrel},
		entry[receiver.Factory]{k8sinventoryreceiver.NewFactory(), modOtelcolKestrel},
		entry[receiver.Factory]{k8sriskreceiver.NewFactory(), modOtelcolKestrel},
		entry[receiver.Factory]{kestreltoolsreceiver.NewFactory(), modOtelcolKestrel},
	)
	if err != nil {
		return otelcol.Factories{}, err
	}

	factories.Processors, factories.ProcessorModules, err = makeMaps(
		entry[processor.Factory]{memorylimiterprocessor.NewFactory(), modMemoryLimiter},
		entry[processor.Factory]{batchprocessor.NewFactory(), modBatch},
		entry[processor.Factory]{k8sattributesprocessor.NewFactory(), modK8sAttributes},
		entry[processor.Factory]{metricsstoreprocessor.NewFactory(), modOtelcolKestrel},
		entry[processor.Factory]{flowmergeprocessor.NewFactory(), modOtelcolKestrel},
	)
	if err != nil {
		return otelcol.Factories{}, err
	}

	factories.Exporters, factories.ExporterModules, err = makeMaps(
		entry[exporter.Factory]{debugexporter.NewFactory(), modDebugExporter},
		entry[exporter.Factory]{otlpexporter.NewFactory(), modOTLPExporter},
		entry[exporter.Factory]{nopexporter.NewFactory(), modNopExporter},
		entry[exporter.Factory]{kestrelexporter.NewFactory(), modOtelcolKestrel},
	)
	if err != nil {
		return otelcol.Factories{}, err
	}

	return factories, nil
}

// makeMaps builds the factory map (which also holds deprecated type aliases, e.g. otlp
// for otlp_grpc) and the matching type → gomod map, as ocb's generated code does.
func makeMaps[F component.Factory](entries ...entry[F]) (map[component.Type]F, map[component.Type]string, error) {
	list := make([]F, len(entries))
	byType := make(map[component.Type]string, len(entries))
	for i, e := range entries {
		list[i] = e.factory
		byType[e.factory.Type()] = e.module
	}
	factories, err := otelcol.MakeFactoryMap(list...)
	if err != nil {
		return nil, nil, err
	}
	modules := make(map[component.Type]string, len(factories))
	for typ, f := range factories {
		modules[typ] = byType[f.Type()]
	}
	return factories, modules, nil
}
