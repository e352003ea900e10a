import Audit
import MedicCore

/// The marks of the timeline, each a focusable link to the record it comes from.
extension TimelineDrawing {
    /// Adds `shape` as mark linking to record `seq`, with `tip` shown on hover and focus next to
    /// (`x`, `y`).
    mutating func mark(_ classes: String, seq: Int64?, tip: String, x: Double, y: Double, _ shape: String) {
        marks += 1
        let id = marks
        let href = seq.map { " href=\"#r\($0)\"" } ?? ""
        body.append("<a id=\"m\(id)\" class=\"mark \(classes)\"\(href) tabindex=\"0\" data-seq=\"\(seq ?? 0)\" aria-label=\"\(Markup.escape(tip))\">\(shape)</a>")
        let text = Markup.clip(tip, 120)
        let width = min(Double(text.count) * 6.6 + 12, Self.width - 4)
        let left = min(max(x - 10, 2), Self.width - width - 2)
        tips.append("<g id=\"t\(id)\" class=\"tip\"><rect x=\"\(Markup.px(left))\" y=\"\(Markup.px(y))\" width=\"\(Markup.px(width))\" height=\"18\" rx=\"3\"/>"
            + "<text x=\"\(Markup.px(left + 6))\" y=\"\(Markup.px(y + 13))\">\(Markup.escape(text))</text></g>")
        rules.append("#tl:has(#m\(id):hover,#m\(id):focus) #t\(id){display:inline}")
    }

    /// The time axis: a line and a label at each round time, across every lane (a label too
    /// close to the one before is left out).
    func axisLines(height: Double) -> String {
        var out = ["<g class=\"axis\"><text class=\"axis-utc\" x=\"6\" y=\"15\">UTC</text>"]
        var lastLabel = -Double.infinity
        for tick in axis.ticks() {
            let x = axis.x(tick.time)
            let half = Double(tick.label.count) * 3.1
            guard x - lastLabel >= 2 * half + 8, x - half >= Self.labelWidth - 20, x + half <= Self.width - 2 else { continue }
            lastLabel = x
            out.append("<line x1=\"\(Markup.px(x))\" y1=\"\(Markup.px(Self.axisHeight - 4))\" x2=\"\(Markup.px(x))\" y2=\"\(Markup.px(height))\"/><text x=\"\(Markup.px(x))\" y=\"15\">\(tick.label)</text>")
        }
        return out.joined() + "</g>"
    }

    /// Each quiet stretch cut short, drawn over the lanes with how long it was.
    func breakBands(height: Double) -> String {
        let bands = axis.breaks.map { gap -> String in
            let (left, right) = (Markup.px(gap.left + 3), Markup.px(gap.left + TimeAxis.Break.width - 3))
            let middle = Markup.px(gap.left + TimeAxis.Break.width / 2)
            return "<g class=\"break\"><rect x=\"\(left)\" y=\"\(Markup.px(Self.axisHeight - 6))\" width=\"\(Markup.px(TimeAxis.Break.width - 6))\" height=\"\(Markup.px(height - Self.axisHeight + 6))\"/>"
                + "<line x1=\"\(left)\" y1=\"\(Markup.px(Self.axisHeight - 6))\" x2=\"\(left)\" y2=\"\(Markup.px(height))\"/><line x1=\"\(right)\" y1=\"\(Markup.px(Self.axisHeight - 6))\" x2=\"\(right)\" y2=\"\(Markup.px(height))\"/>"
                + "<text x=\"\(middle)\" y=\"\(Markup.px(Self.axisHeight + 8))\" transform=\"rotate(90 \(middle) \(Markup.px(Self.axisHeight + 8)))\">\(Self.roughly(gap.quiet))</text>"
                + "<title>\(Self.duration(gap.quiet)) with nothing recorded, cut short</title></g>"
        }
        return "<g class=\"breaks\">" + bands.joined() + "</g>"
    }

    /// From the moment it broke to the moment it was healthy again (or closed, or now).
    mutating func impactBand(_ story: IncidentStory, top: Double, bottom: Double) {
        let end = story.healthyAgain?.at ?? story.closed?.at ?? story.end
        let from = axis.x(story.impactStart), to = max(axis.x(end), from + 2)
        let open = story.healthyAgain == nil
        let how = story.healthyAgain != nil ? "healthy again at \(Self.clock(end))"
            : story.closed != nil ? "closed \(story.summary.status) at \(Self.clock(end)) without being healthy again" : "still open"
        let tip = "incident \(story.summary.id) impact: from \(Self.clock(story.impactStart)) for \(Self.duration(end - story.impactStart)), \(how)"
        mark("impact\(open ? " unresolved" : "")", seq: story.detected?.seq, tip: tip, x: from, y: top + 4,
             "<rect x=\"\(Markup.px(from))\" y=\"\(Markup.px(top + 1))\" width=\"\(Markup.px(to - from))\" height=\"\(Markup.px(bottom - top - 2))\"/>")
    }

    /// Detection, mitigation and recovery as lines through the lane.
    mutating func phaseLines(_ story: IncidentStory, top: Double, bottom: Double) {
        for (name, moment) in [("detected", story.detected), ("mitigated", story.mitigated), ("healthy", story.healthyAgain)] {
            guard let moment else { continue }
            let x = Markup.px(axis.x(moment.at))
            body.append("<line class=\"phase-line \(name)\" x1=\"\(x)\" y1=\"\(Markup.px(top + 2))\" x2=\"\(x)\" y2=\"\(Markup.px(bottom - 2))\"/>")
        }
    }

    /// The incident's name where it broke, and a flag for each of detection, mitigation,
    /// recovery and closing with its figure.
    func phaseFlags(_ story: IncidentStory) -> [Placed] {
        let s = story.summary
        var flags: [(String, String, IncidentStory.Moment, String)] = []
        if let detected = story.detected {
            flags.append(("broke", "#\(s.id) \(Markup.clip(s.trigger, 28))", IncidentStory.Moment(at: story.impactStart, seq: detected.seq),
                          "incident \(s.id) (\(s.playbook)): \(s.trigger); broke at \(Self.clock(story.impactStart))"))
            let after = story.timeToDetectMs.map(Self.figure)
            flags.append(("detected", "detected" + (after.map { " +\($0)" } ?? ""), detected,
                          "#\(detected.seq) detected at \(Self.clock(detected.at))" + (after.map { ", \($0) after it broke" } ?? " (when it broke is not known)")))
        }
        if let mitigated = story.mitigated {
            let after = story.timeToMitigateMs.map(Self.figure) ?? "?"
            flags.append(("mitigated", "mitigated +\(after)", mitigated, "#\(mitigated.seq) mitigated at \(Self.clock(mitigated.at)), \(after) after it broke"))
        }
        if let healthy = story.healthyAgain {
            let after = story.timeToRecoverMs.map(Self.figure) ?? "?"
            flags.append(("healthy", "healthy +\(after)", healthy, "#\(healthy.seq) healthy again at \(Self.clock(healthy.at)), \(after) after it broke"))
        }
        if let closed = story.closed {
            flags.append(("closed", "closed: \(Markup.clip(s.status, 24))", closed, "#\(closed.seq) closed at \(Self.clock(closed.at)): \(s.status)"))
        }
        return flags.map { name, label, moment, tip in
            let x = axis.x(moment.at)
            let textWidth = Double(label.count) * 6
            // Near the right edge the label goes to the left of its moment.
            let leftward = x + 8 + textWidth > Self.width - 2
            let (from, to) = leftward ? (x - 8 - textWidth, x + 4) : (x - 4, x + 8 + textWidth)
            return Placed(from: from, to: to) { drawing, y in
                let anchor = leftward ? "x=\"\(Markup.px(x - 6))\" text-anchor=\"end\"" : "x=\"\(Markup.px(x + 6))\""
                drawing.mark("flag \(name)", seq: moment.seq, tip: tip, x: x, y: y + Self.flagRow,
                             "<circle cx=\"\(Markup.px(x))\" cy=\"\(Markup.px(y + 7))\" r=\"3.5\"/><text \(anchor) y=\"\(Markup.px(y + 11))\">\(Markup.escape(label))</text>")
            }
        }
    }

    /// Guard stops (◆), escalations (▲) and notifications (●).
    func markerFlags(_ story: IncidentStory) -> [Placed] {
        story.markers.map { marker in
            let record = marker.record
            let x = axis.x(record.wallMicroseconds)
            let which = marker.kind == .guardStop ? " (\(record.facts[.guardName] ?? "guard"))" : ""
            let tip = "#\(record.seq ?? 0) \(Self.clock(record.wallMicroseconds)) \(marker.kind.rawValue)\(which): \(record.message)"
            let (cx, cy) = (Markup.px(x), 7.0)
            return Placed(from: x - 6, to: x + 6) { drawing, y in
                let mid = y + cy
                let shape: String
                switch marker.kind {
                case .guardStop:
                    shape = "<polygon points=\"\(cx),\(Markup.px(mid - 6)) \(Markup.px(x + 6)),\(Markup.px(mid)) \(cx),\(Markup.px(mid + 6)) \(Markup.px(x - 6)),\(Markup.px(mid))\"/>"
                case .escalation:
                    shape = "<polygon points=\"\(cx),\(Markup.px(mid - 6)) \(Markup.px(x + 6)),\(Markup.px(mid + 5)) \(Markup.px(x - 6)),\(Markup.px(mid + 5))\"/>"
                case .notification:
                    shape = "<circle cx=\"\(cx)\" cy=\"\(Markup.px(mid))\" r=\"5\"/>"
                }
                drawing.mark("marker \(marker.kind == .guardStop ? "guard" : marker.kind.rawValue)", seq: record.seq, tip: tip, x: x, y: y + Self.flagRow, shape)
            }
        }
    }

    /// A step from its intent to its result, coloured by outcome, with its name after it.
    func stepBar(_ span: IncidentStory.StepSpan, until storyEnd: Int64) -> Placed {
        let start = span.intent.wallMicroseconds
        let end = span.end?.wallMicroseconds ?? storyEnd
        let from = axis.x(start), to = max(axis.x(end), from + 3)
        let ended = span.end.map { "→#\($0.seq ?? 0) " } ?? " "
        let message = span.end?.message ?? "no result was recorded: \(span.intent.message)"
        let tip = "#\(span.intent.seq ?? 0)\(ended)\(Self.clock(start)) \(span.name) \(span.outcome) in \(Self.duration(end - start)): \(message)"
        let seq = span.end?.seq ?? span.intent.seq
        let outcome = Self.outcomeClass[span.outcome] ?? "other"
        let label = "\(span.name) \(Self.duration(end - start))"
        let textWidth = Double(label.count) * 6.2
        // Near the right edge the name goes before the bar.
        let leftward = to + 6 + textWidth > Self.width - 2
        let anchor = leftward ? "x=\"\(Markup.px(from - 4))\" text-anchor=\"end\"" : "x=\"\(Markup.px(to + 4))\""
        return Placed(from: leftward ? from - 6 - textWidth : from, to: leftward ? to : to + 6 + textWidth) { drawing, y in
            drawing.mark("step \(outcome)", seq: seq, tip: tip, x: from, y: y + Self.barRow,
                         "<rect x=\"\(Markup.px(from))\" y=\"\(Markup.px(y + 2))\" width=\"\(Markup.px(to - from))\" height=\"12\" rx=\"2\"/>"
                            + "<text \(anchor) y=\"\(Markup.px(y + 12))\">\(Markup.escape(label))</text>")
        }
    }

    /// A server's state in its pool for a while.
    mutating func poolSegment(_ span: IncidentStory.PoolSpan, y: Double) {
        let from = axis.x(span.start), to = max(axis.x(span.end), from + 2)
        let state = Self.poolStateName[span.state] ?? span.state
        let set = span.seq.map { " (set by record #\($0))" } ?? " (before Medic acted)"
        let tip = "\(span.server): \(state) from \(Self.clock(span.start)) for \(Self.duration(span.end - span.start))\(set)"
        let known = Self.poolStateName[span.state] != nil ? span.state : "other"
        mark("pool pool-\(known)", seq: span.seq, tip: tip, x: from, y: y + Self.poolRow,
             "<rect x=\"\(Markup.px(from))\" y=\"\(Markup.px(y + 1))\" width=\"\(Markup.px(to - from))\" height=\"7\"/>")
    }

    /// CSS classes of step outcomes (never the recorded text itself).
    static let outcomeClass = ["succeeded": "ok", "failed": "failed", "refused": "refused", "interrupted": "interrupted", "dry-run": "dry", "no result": "pending"]
    static let poolStateName = ["ready": "in service", "drain": "drained", "maint": "maintenance"]

    static func clock(_ time: Int64) -> String { TimeAxis.label(time, step: 1, days: false) }
    /// A figure the engine measured in whole milliseconds (0 is under one).
    static func figure(_ milliseconds: Int) -> String {
        milliseconds <= 0 ? "<1ms" : DurationText.format(.milliseconds(milliseconds))
    }

    static func duration(_ microseconds: Int64) -> String {
        microseconds <= 0 ? "0ms" : microseconds < 1000 ? "<1ms" : DurationText.format(.milliseconds(microseconds / 1000))
    }

    /// A duration to two units at most: 3h29m57.9s is `3h30m`, 1.26 s is `1s300ms`.
    static func roughly(_ microseconds: Int64) -> String {
        let ms = max(microseconds, 0) / 1000
        let unit: Int64 = ms >= 86_400_000 ? 3_600_000 : ms >= 3_600_000 ? 60_000 : ms >= 60_000 ? 1000 : ms >= 1000 ? 100 : 1
        return DurationText.format(.milliseconds((ms + unit / 2) / unit * unit))
    }
}
