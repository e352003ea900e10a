/// The page's styles, inline: system fonts only, readable on a laptop, a phone and paper.
enum ReportStyle {
    static let css = """
        :root{--ink:#1d2125;--muted:#5e6670;--line:#d8dde3;--ok:#2e9e5b;--bad:#d64541;--warn:#e3a008;--info:#1f6feb;--guard:#8e44ad}
        *{box-sizing:border-box}
        body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:var(--ink);margin:0 auto;max-width:1120px;padding:16px}
        h1{font-size:1.5em;margin:.2em 0}
        h2{font-size:1.2em;margin:1.6em 0 .5em;border-bottom:1px solid var(--line);padding-bottom:.2em}
        h3{font-size:1em;margin:1.2em 0 .4em}
        .summary{font-size:1.05em}
        .status{display:inline-block;padding:0 .5em;border-radius:4px;background:#eef1f4;font-weight:600}
        .status.recovered{background:#dff3e6;color:#1b6b3c}.status.open{background:#fde2e1;color:#9b2520}
        .figures{display:flex;flex-wrap:wrap;gap:10px;margin:12px 0}
        .figure{border:1px solid var(--line);border-radius:6px;padding:8px 12px;min-width:140px;flex:1 1 140px}
        .figure .value{font-size:1.5em;font-weight:600}.figure .value.word{font-size:1.1em;line-height:1.95}.figure .name{color:var(--muted);font-size:.85em}
        .scroll{overflow-x:auto;-webkit-overflow-scrolling:touch}
        .timeline svg{display:block;width:100%;min-width:760px;height:auto;overflow:visible}
        #tl text{font:11px system-ui,"DejaVu Sans",sans-serif;fill:var(--ink)}
        #tl .axis line{stroke:#e6e9ed}#tl .axis text{text-anchor:middle;fill:var(--muted)}#tl .axis .axis-utc{text-anchor:start}
        #tl .lane-bg{fill:none}#tl .lane-bg.shaded{fill:#000;fill-opacity:.03}
        #tl .lane-name{font-weight:600}#tl .lane-host,#tl .pool-name{fill:var(--muted);font-size:10px}
        #tl .impact rect{fill:#fde2e1}#tl .impact.unresolved rect{fill:#fbd0cd;stroke:var(--bad);stroke-dasharray:4 3}
        #tl .phase-line{stroke-width:1.5;stroke-dasharray:3 2}
        #tl .detected{stroke:var(--info);fill:var(--info)}#tl .mitigated{stroke:var(--warn);fill:var(--warn)}
        #tl .healthy{stroke:var(--ok);fill:var(--ok)}#tl .closed{fill:var(--muted)}#tl .broke{fill:var(--bad)}
        #tl .flag text{font-size:10px;stroke:none}
        #tl .step.ok rect{fill:var(--ok)}#tl .step.failed rect{fill:var(--bad)}#tl .step.refused rect{fill:var(--guard)}
        #tl .step.interrupted rect{fill:#e67e22}#tl .step.dry rect{fill:#9aa5b1}#tl .step.other rect{fill:#6c7a89}
        #tl .step.pending rect{fill:#fff;stroke:var(--muted);stroke-dasharray:3 2}
        #tl .marker.guard{fill:var(--guard)}#tl .marker.escalation{fill:var(--bad)}#tl .marker.notification{fill:var(--info)}
        #tl .pool-ready{fill:var(--ok)}#tl .pool-drain{fill:var(--warn)}#tl .pool-maint{fill:#7a7a7a}#tl .pool-other{fill:#b0b7c0}
        #tl .break rect{fill:#eef0f3}#tl .break line{stroke:#9aa5b1;stroke-dasharray:2 2}#tl .break text{dominant-baseline:middle;fill:var(--muted);font-size:10px}
        #tl .mark{cursor:pointer;outline:none}
        #tl .mark:focus rect,#tl .mark:focus circle,#tl .mark:focus polygon,#tl .mark:hover rect,#tl .mark:hover circle,#tl .mark:hover polygon{stroke:#000;stroke-width:1.5}
        #tl .tip{display:none;pointer-events:none}#tl .tip rect{fill:#1d2125;opacity:.92}#tl .tip text{fill:#fff;font:11px ui-monospace,"DejaVu Sans Mono",monospace}
        .legend{display:flex;flex-wrap:wrap;gap:4px 14px;color:var(--muted);font-size:.85em;margin:6px 0 0;padding:0;list-style:none}
        .legend i{display:inline-block;width:12px;height:10px;margin-right:4px;vertical-align:-1px;border-radius:2px}
        table{border-collapse:collapse;width:100%;font-size:.9em}
        th,td{border-bottom:1px solid var(--line);padding:4px 6px;text-align:left;vertical-align:top}
        th{background:#f3f5f7;position:sticky;top:0}
        td.seq a{color:var(--muted)}td.time{white-space:nowrap;font-variant-numeric:tabular-nums}
        tr:target{background:#fff6cc;outline:2px solid var(--warn)}
        pre{white-space:pre-wrap;word-break:break-word;background:#f6f8fa;border:1px solid var(--line);border-radius:4px;padding:8px;font-size:.85em;margin:4px 0}
        details summary{cursor:pointer;color:var(--muted)}
        .blank{color:var(--muted);font-style:italic;border:1px dashed var(--line);border-radius:4px;padding:10px;min-height:3em}
        footer{margin-top:2em;padding-top:.6em;border-top:1px solid var(--line);color:var(--muted);font-size:.85em}
        footer .verified{color:#1b6b3c;font-weight:600}footer .tampered{color:var(--bad);font-weight:600}
        @media (max-width:600px){body{padding:10px;font-size:14px}.figure{min-width:120px}}
        @media print{body{max-width:none}.scroll{overflow:visible}.timeline svg{min-width:0}th{position:static}details>*{display:block}}
        """
}
