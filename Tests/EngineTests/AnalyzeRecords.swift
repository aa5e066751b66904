import FlowDispatch
import Engine
import Foundation

/// `flowtap analyze`'s records for capture files, run in-process (AnalyzeSink over Pipeline), parsed back from
/// their JSON lines; the differential tests compare these with other tools' expectations.
func analyzeRecords(_ traces: [String]) throws -> [[String: Any]] {
    var records: [[String: Any]] = []
    let sink = AnalyzeSink { line in
        if let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] { records.append(object) }
    }
    _ = try Pipeline.run(files: traces, sink: sink)
    sink.http.closeAll(time: 0)
    return records
}
