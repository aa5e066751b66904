import Prometheus

/// Turns snapshots into Prometheus's text exposition through swift-prometheus's registry.
///
/// The packet path keeps plain counters of its own; at each scrape the HTTP thread moves every
/// registry series to the snapshot's value (the sources' counters only rise, so neither do these), adds the process's own metrics, and lets the registry write the text. A sample
/// that would break the registry's rules (one name used as a counter and a gauge, with and without
/// labels, or with two help texts) is left out and counted in `flowtap_telemetry_samples_skipped_total`
/// rather than stopping the process.
final class PrometheusExposition {
    private struct Family {
        var kind: MetricSample.Kind
        var help: String
        var labeled: Bool
    }

    private struct SeriesKey: Hashable {
        var name: String
        var labels: [MetricLabel]
    }

    private let registry = PrometheusCollectorRegistry()
    private var families: [String: Family] = [:]
    private var counters: [SeriesKey: Counter] = [:]
    private var gauges: [SeriesKey: Gauge] = [:]
    private var skipped: UInt64 = 0
    private var buffer: [UInt8] = []

    func render(_ snapshot: TelemetrySnapshot, command: String, version: String, startTime: Double, published: Int) -> [UInt8] {
        var samples = snapshot.metrics
        let usage = ProcessUsage.current()
        samples.append(MetricSample(name: "process_cpu_seconds_total", help: "Total user and system CPU time spent in seconds.", kind: .counter, labels: [], value: usage.cpuSeconds))
        samples.append(MetricSample(name: "process_resident_memory_bytes", help: "Resident memory size in bytes.", kind: .gauge, labels: [], value: usage.residentBytes))
        samples.append(MetricSample(name: "process_virtual_memory_bytes", help: "Virtual memory size in bytes.", kind: .gauge, labels: [], value: usage.virtualBytes))
        samples.append(MetricSample(name: "process_open_fds", help: "Number of open file descriptors.", kind: .gauge, labels: [], value: usage.openFileDescriptors))
        samples.append(MetricSample(name: "process_max_fds", help: "Maximum number of open file descriptors.", kind: .gauge, labels: [], value: usage.maxFileDescriptors))
        samples.append(MetricSample(name: "process_start_time_seconds", help: "Start time of the process since unix epoch in seconds.", kind: .gauge, labels: [], value: startTime))
        samples.append(MetricSample(name: "flowtap_build_info", help: "Always 1: the command and version serving these metrics.", kind: .gauge,
                                    labels: [MetricLabel(name: "command", value: command), MetricLabel(name: "version", value: version)], value: 1))
        samples.append(MetricSample(name: "flowtap_telemetry_snapshots_total", help: "Snapshots the packet threads published for these metrics.", kind: .counter, labels: [], value: Double(published)))
        for sample in samples { apply(sample) }
        apply(MetricSample(name: "flowtap_telemetry_samples_skipped_total", help: "Samples left out because they broke the exposition's rules (a name with two types, help texts or label shapes).",
                           kind: .counter, labels: [], value: Double(skipped)))
        buffer.removeAll(keepingCapacity: true)
        registry.emit(into: &buffer)
        return buffer
    }

    private func apply(_ sample: MetricSample) {
        let labeled = !sample.labels.isEmpty
        if let family = families[sample.name] {
            guard family.kind == sample.kind, family.help == sample.help, family.labeled == labeled else {
                skipped &+= 1
                return
            }
        } else {
            families[sample.name] = Family(kind: sample.kind, help: sample.help, labeled: labeled)
        }
        let key = SeriesKey(name: sample.name, labels: sample.labels)
        let descriptor = MetricNameDescriptor(metricName: sample.name, unitName: "", helpText: sample.help)
        let pairs = sample.labels.map { ($0.name, $0.value) }
        switch sample.kind {
        case .counter:
            let counter = counters[key] ?? (labeled ? registry.makeCounter(descriptor: descriptor, labels: pairs) : registry.makeCounter(descriptor: descriptor))
            counters[key] = counter
            // Counts stay integers (exact past 2^53); CPU seconds are the one fractional counter.
            counter.reset()
            if sample.value == sample.value.rounded(.down) && sample.value < 9.2e18 {
                counter.increment(by: Int64(max(0, sample.value)))
            } else {
                counter.increment(by: max(0, sample.value))
            }
        case .gauge:
            let gauge = gauges[key] ?? (labeled ? registry.makeGauge(descriptor: descriptor, labels: pairs) : registry.makeGauge(descriptor: descriptor))
            gauges[key] = gauge
            gauge.set(sample.value)
        }
    }
}
