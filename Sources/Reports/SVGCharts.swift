import Foundation

/// Inline SVG charts for the report: drawn here as text, so the page needs no script or library.
enum SVGCharts {
    static let palette = ["#2b7bba", "#e08a1e", "#3a9d5d", "#c8453b", "#7b5ea7", "#8c6d31", "#d16ba5", "#5f7a8a", "#b8b23a", "#2aa8a8"]

    /// Horizontal bars, one row per (label, value), largest first as given.
    static func bars(_ rows: [(label: String, value: Double, note: String)], width: Int = 560, format: (Double) -> String) -> String {
        guard !rows.isEmpty else { return "<p class=\"empty\">none in this capture</p>" }
        let rowHeight = 22, labelWidth = 210, valueWidth = 120
        let height = rows.count * rowHeight + 4
        let maxValue = max(rows.map(\.value).max() ?? 1, 1e-9)
        let barSpace = Double(width - labelWidth - valueWidth)
        var svg = "<svg class=\"chart\" viewBox=\"0 0 \(width) \(height)\" width=\"\(width)\" height=\"\(height)\" role=\"img\">"
        for (i, row) in rows.enumerated() {
            let y = i * rowHeight + 2
            let w = max(1, barSpace * row.value / maxValue)
            svg += "<text x=\"\(labelWidth - 8)\" y=\"\(y + 15)\" text-anchor=\"end\" class=\"label\">\(escape(clip(row.label, 30)))<title>\(escape(row.label))</title></text>"
            svg += "<rect x=\"\(labelWidth)\" y=\"\(y + 3)\" width=\"\(f(w))\" height=\"\(rowHeight - 6)\" rx=\"2\" fill=\"\(palette[i % palette.count])\"/>"
            svg += "<text x=\"\(f(Double(labelWidth) + w + 6))\" y=\"\(y + 15)\" class=\"value\">\(escape(format(row.value)))\(row.note.isEmpty ? "" : " · " + escape(row.note))</text>"
        }
        return svg + "</svg>"
    }

    /// Vertical bars over ordered bins (a distribution).
    static func histogram(_ labels: [String], _ counts: [UInt64], width: Int = 560, height: Int = 200) -> String {
        let total = counts.reduce(0, +)
        guard total > 0 else { return "<p class=\"empty\">none in this capture</p>" }
        let left = 44, bottom = 38, top = 18
        let plotHeight = Double(height - bottom - top)
        let slot = Double(width - left - 8) / Double(counts.count)
        let maxCount = Double(counts.max() ?? 1)
        var svg = "<svg class=\"chart\" viewBox=\"0 0 \(width) \(height)\" width=\"\(width)\" height=\"\(height)\" role=\"img\">"
        for i in 0 ... 4 {
            let v = maxCount * Double(i) / 4, y = Double(height - bottom) - plotHeight * Double(i) / 4
            svg += "<line x1=\"\(left)\" x2=\"\(width)\" y1=\"\(f(y))\" y2=\"\(f(y))\" class=\"grid\"/>"
            svg += "<text x=\"\(left - 6)\" y=\"\(f(y + 4))\" text-anchor=\"end\" class=\"axis\">\(compact(v))</text>"
        }
        for (i, count) in counts.enumerated() {
            let h = plotHeight * Double(count) / maxCount
            let x = Double(left) + slot * Double(i) + 3
            svg += "<rect x=\"\(f(x))\" y=\"\(f(Double(height - bottom) - h))\" width=\"\(f(slot - 6))\" height=\"\(f(h))\" fill=\"#2b7bba\"><title>\(escape(labels[i])): \(count)</title></rect>"
            if count > 0 {
                let share = 100 * Double(count) / Double(total)
                svg += "<text x=\"\(f(x + (slot - 6) / 2))\" y=\"\(f(Double(height - bottom) - h - 4))\" text-anchor=\"middle\" class=\"value\">\(share >= 1 ? String(format: "%.0f%%", share) : "<1%")</text>"
            }
            svg += "<text x=\"\(f(x + (slot - 6) / 2))\" y=\"\(height - bottom + 16)\" text-anchor=\"middle\" class=\"axis\">\(escape(labels[i]))</text>"
        }
        return svg + "</svg>"
    }

    /// An area chart of `values` at evenly spaced times from `start` (seconds since the epoch).
    static func timeline(_ values: [Double], start: Double, step: Double, unit: String, color: String, width: Int = 1120, height: Int = 210) -> String {
        guard values.count >= 2 else { return "<p class=\"empty\">too short to plot</p>" }
        let left = 64, bottom = 28, top = 12
        let plotWidth = Double(width - left - 10), plotHeight = Double(height - bottom - top)
        let maxValue = max(values.max() ?? 1, 1e-9) * 1.08
        func x(_ i: Int) -> Double { Double(left) + plotWidth * Double(i) / Double(values.count - 1) }
        func y(_ v: Double) -> Double { Double(height - bottom) - plotHeight * v / maxValue }
        var svg = "<svg class=\"chart\" viewBox=\"0 0 \(width) \(height)\" width=\"100%\" preserveAspectRatio=\"none\" role=\"img\">"
        for i in 0 ... 4 {
            let v = maxValue * Double(i) / 4
            svg += "<line x1=\"\(left)\" x2=\"\(width)\" y1=\"\(f(y(v)))\" y2=\"\(f(y(v)))\" class=\"grid\"/>"
            svg += "<text x=\"\(left - 6)\" y=\"\(f(y(v) + 4))\" text-anchor=\"end\" class=\"axis\">\(compact(v))\(unit)</text>"
        }
        for i in 0 ... 4 {
            let index = (values.count - 1) * i / 4
            let t = start + step * Double(index)
            // A short capture's axis counts from its start; a long one's shows the time of day (UTC).
            let span = step * Double(values.count - 1)
            let label = span < 120 ? (i == 0 ? clock(t) : "+" + offset(t - start)) : clock(t)
            svg += "<text x=\"\(f(x(index)))\" y=\"\(height - 8)\" text-anchor=\"\(i == 0 ? "start" : i == 4 ? "end" : "middle")\" class=\"axis\">\(label)</text>"
        }
        var line = ""
        for (i, v) in values.enumerated() { line += (i == 0 ? "M" : "L") + f(x(i)) + "," + f(y(v)) }
        svg += "<path d=\"\(line)L\(f(x(values.count - 1))),\(f(y(0)))L\(f(x(0))),\(f(y(0)))Z\" fill=\"\(color)\" fill-opacity=\"0.18\"/>"
        svg += "<path d=\"\(line)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.6\"/>"
        return svg + "</svg>"
    }

    static func f(_ v: Double) -> String { String(format: "%.1f", v) }

    static func clip(_ text: String, _ n: Int) -> String { text.count > n ? String(text.prefix(n - 1)) + "…" : text }

    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for c in text.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default:
                // Control characters from hostile names are shown as code points, not passed through.
                if c.value < 0x20 || c.value == 0x7F { out += "\\u{\(String(c.value, radix: 16))}" } else { out.unicodeScalars.append(c) }
            }
        }
        return out
    }

    /// 1234 → "1.2k", 5_600_000 → "5.6M".
    static func compact(_ v: Double) -> String {
        let units = ["", "k", "M", "G", "T"]
        var value = v, i = 0
        while abs(value) >= 1000 && i < units.count - 1 {
            value /= 1000
            i += 1
        }
        if i == 0 { return value == value.rounded() ? String(Int(value)) : String(format: "%.1f", value) }
        return String(format: value < 10 ? "%.1f" : "%.0f", value) + units[i]
    }

    static func offset(_ seconds: Double) -> String {
        seconds < 1 ? String(format: "%.0f ms", seconds * 1000) : String(format: "%.1f s", seconds)
    }

    static func clock(_ t: Double) -> String { utc(t, "%H:%M:%S") }

    /// `t` (seconds since the epoch) in UTC by strftime's `format`; out-of-range times print as a number.
    static func utc(_ t: Double, _ format: String) -> String {
        guard t.isFinite, abs(t) < 1e12 else { return String(t) }
        var seconds = time_t(t.rounded(.down))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        var buffer = [CChar](repeating: 0, count: 64)
        let n = strftime(&buffer, buffer.count, format, &parts)
        return String(decoding: buffer[0 ..< n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
