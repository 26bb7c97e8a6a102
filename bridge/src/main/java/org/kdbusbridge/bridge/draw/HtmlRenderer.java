// Invariants: the page is one file with no external reference (no src/href to a network or a
// file); every captured string reaches it only inside the JSON data block, escaped so that no
// '<', '>', '&', quote or line separator appears raw, and the page's script puts strings into
// the DOM with textContent/setAttribute only, never as markup.
package org.kdbusbridge.bridge.draw;

import java.util.List;

/** Renders a SequenceModel as a self-contained HTML page (inline CSS and script, SVG diagram). */
public final class HtmlRenderer {
    private HtmlRenderer() { }

    public static String render(SequenceModel m, String title) {
        StringBuilder data = new StringBuilder(256 + m.messages.size() * 256);
        data.append("{\"title\":").append(json(title));
        data.append(",\"packets\":").append(m.packets);
        data.append(",\"undecodable\":").append(m.undecodable);
        data.append(",\"notDrawn\":").append(m.notDrawn);
        data.append(",\"truncated\":").append(m.truncated);
        data.append(",\"max\":").append(SequenceModel.MAX_MESSAGES);
        data.append(",\"peers\":[");
        for (int i = 0; i < m.peers.size(); i++) {
            SequenceModel.Peer p = m.peers.get(i);
            if (i > 0) data.append(',');
            data.append("{\"id\":").append(json(p.id)).append(",\"names\":");
            strings(data, List.copyOf(p.names));
            data.append('}');
        }
        data.append("],\"messages\":[");
        long t0 = m.messages.stream().mapToLong(x -> x.micros).filter(t -> t >= 0).min().orElse(-1);
        for (int i = 0; i < m.messages.size(); i++) {
            SequenceModel.Msg x = m.messages.get(i);
            if (i > 0) data.append(",\n");
            data.append("{\"type\":").append(x.type)
                    .append(",\"flags\":").append(x.flags)
                    .append(",\"serial\":").append(x.serial)
                    .append(",\"replySerial\":").append(x.replySerial)
                    .append(",\"t\":").append(x.micros >= 0 && t0 >= 0 ? x.micros - t0 : -1)
                    .append(",\"from\":").append(x.from)
                    .append(",\"to\":").append(x.to)
                    .append(",\"replyOf\":").append(x.replyOf)
                    .append(",\"reply\":").append(x.reply)
                    .append(",\"length\":").append(x.length)
                    .append(",\"fds\":").append(x.unixFds);
            field(data, "sender", x.sender);
            field(data, "destination", x.destination);
            field(data, "path", x.path);
            field(data, "iface", x.iface);
            field(data, "member", x.member);
            field(data, "error", x.errorName);
            field(data, "signature", x.signature);
            field(data, "body", x.body);
            data.append('}');
        }
        data.append("]}");
        return PAGE_HEAD.replace("@TITLE@", html(title)) + data + PAGE_TAIL;
    }

    private static void field(StringBuilder sb, String name, String value) {
        if (value != null) sb.append(",\"").append(name).append("\":").append(json(value));
    }

    private static void strings(StringBuilder sb, List<String> l) {
        sb.append('[');
        for (int i = 0; i < l.size(); i++) {
            if (i > 0) sb.append(',');
            sb.append(json(l.get(i)));
        }
        sb.append(']');
    }

    /** A JSON string literal that is also inert inside a script element. */
    static String json(String s) {
        StringBuilder sb = new StringBuilder(s.length() + 2).append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> sb.append("\\\"");
                case '\\' -> sb.append("\\\\");
                case '\n' -> sb.append("\\n");
                default -> {
                    if (c < 0x20 || c == '<' || c == '>' || c == '&' || c == '\'' || c == 0x2028 || c == 0x2029
                            || Character.isSurrogate(c) && !validSurrogate(s, i)) {
                        sb.append(String.format("\\u%04x", (int) c));
                    } else {
                        sb.append(c);
                    }
                }
            }
        }
        return sb.append('"').toString();
    }

    private static boolean validSurrogate(String s, int i) {
        char c = s.charAt(i);
        if (Character.isHighSurrogate(c)) return i + 1 < s.length() && Character.isLowSurrogate(s.charAt(i + 1));
        return i > 0 && Character.isHighSurrogate(s.charAt(i - 1));
    }

    /** Text for HTML element content and attribute values. */
    static String html(String s) {
        StringBuilder sb = new StringBuilder(s.length());
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '<' -> sb.append("&lt;");
                case '>' -> sb.append("&gt;");
                case '&' -> sb.append("&amp;");
                case '"' -> sb.append("&quot;");
                case '\'' -> sb.append("&#39;");
                default -> sb.append(c);
            }
        }
        return sb.toString();
    }

    private static final String PAGE_HEAD = """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8">
            <meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
            <title>@TITLE@</title>
            <style>
            body{font:13px/1.35 system-ui,sans-serif;margin:0;color:#222;background:#fff}
            header{position:sticky;top:0;z-index:3;background:#f4f4f4;border-bottom:1px solid #ccc;padding:6px 10px}
            header h1{font-size:15px;margin:0 0 4px 0}
            header label{margin-right:12px}
            header input{width:16em}
            #summary{color:#555;margin-left:8px}
            #cut-notice{background:#fff3cd;border:1px solid #e0c060;padding:3px 8px;margin-top:4px}
            #wrap{display:flex;align-items:flex-start}
            #diagram-box{flex:1;overflow:auto}
            #details{position:sticky;top:70px;width:30%;max-height:85vh;overflow:auto;border-left:1px solid #ccc;padding:8px;background:#fafafa}
            #details table{border-collapse:collapse;width:100%}
            #details td{border-bottom:1px solid #e4e4e4;padding:2px 4px;vertical-align:top;word-break:break-all}
            #details td.k{color:#666;white-space:nowrap;width:7em}
            #details pre{white-space:pre-wrap;word-break:break-all;background:#fff;border:1px solid #ddd;padding:4px}
            svg text{font:12px system-ui,sans-serif}
            .lifeline{stroke:#bbb;stroke-dasharray:4 3}
            .peer-box{fill:#e8eef8;stroke:#7a90b8}
            .peer-name{font-weight:bold}
            .peer-wk{fill:#345}
            .time{fill:#777;font-size:11px}
            .msg{cursor:pointer}
            .msg .hit{fill:transparent}
            .msg:hover .hit,.msg.selected .hit{fill:#fff6c8}
            .msg.call line,.msg.call path{stroke:#1f5fbf;fill:none}
            .msg.reply line,.msg.reply path{stroke:#2f8f2f;stroke-dasharray:5 3;fill:none}
            .msg.error line,.msg.error path{stroke:#d00000;fill:none}
            .msg.error text{fill:#d00000;font-weight:bold}
            .msg.signal line,.msg.signal path{stroke:#8a3fb8;fill:none}
            .msg.signal .bcast{stroke:#8a3fb8;stroke-width:3;opacity:.35}
            .msg.signal circle{fill:#8a3fb8}
            .join{stroke:#999;stroke-width:2;opacity:.5}
            .joined .join{opacity:1;stroke:#f0a000}
            .legend span{margin-right:10px}
            </style></head><body>
            <header><h1 id="title"></h1>
            <label>Peer <input id="filter-peer" type="search" placeholder="unique or well-known name"></label>
            <label>Interface <input id="filter-iface" type="search" placeholder="e.g. org.freedesktop.DBus"></label>
            <span id="summary"></span>
            <span class="legend"><span style="color:#1f5fbf">&#8594; call</span><span style="color:#2f8f2f">&#8674; reply</span><span style="color:#d00000">&#8594; error</span><span style="color:#8a3fb8">&#9679;&#8212; signal (bar: broadcast)</span></span>
            <div id="cut-notice" hidden></div>
            </header>
            <div id="wrap"><div id="diagram-box"><svg id="diagram" xmlns="http://www.w3.org/2000/svg"></svg></div>
            <aside id="details"><em>Click a message to see its header fields and body.</em></aside></div>
            <script id="capture-data" type="application/json">
            """;

    private static final String PAGE_TAIL = """

            </script>
            <script>
            "use strict";
            (function () {
            const D = JSON.parse(document.getElementById("capture-data").textContent);
            const NS = "http://www.w3.org/2000/svg";
            const COL = 190, LEFT = 100, TOP = 70, ROW = 26;
            const TYPES = {1: "call", 2: "reply", 3: "error", 4: "signal"};
            const TYPE_NAMES = {1: "METHOD_CALL", 2: "METHOD_RETURN", 3: "ERROR", 4: "SIGNAL"};
            const svg = document.getElementById("diagram");
            const details = document.getElementById("details");
            document.getElementById("title").textContent = D.title;
            document.title = D.title;
            if (D.notDrawn > 0) {
              const n = document.getElementById("cut-notice");
              n.hidden = false;
              n.textContent = "This capture has " + (D.messages.length + D.notDrawn) + " messages: only the first "
                + D.messages.length + " (the limit is " + D.max + ") are drawn.";
            }
            function el(name, attrs, parent) {
              const e = document.createElementNS(NS, name);
              for (const k in attrs) e.setAttribute(k, String(attrs[k]));
              if (parent) parent.appendChild(e);
              return e;
            }
            function text(parent, x, y, s, cls, anchor) {
              const t = el("text", {x: x, y: y, "text-anchor": anchor || "middle"}, parent);
              if (cls) t.setAttribute("class", cls);
              t.textContent = s;
              return t;
            }
            function peerLabel(p) { return [p.id].concat(p.names).join(" "); }
            function iface(m) {
              if (m.iface) return m.iface;
              return m.replyOf >= 0 && D.messages[m.replyOf].iface ? D.messages[m.replyOf].iface : "";
            }
            function label(m) {
              if (m.type === 3) return m.error;
              if (m.type === 2) {
                const c = m.replyOf >= 0 ? D.messages[m.replyOf] : null;
                return "return" + (c && c.member ? " " + c.member : "");
              }
              return m.member;
            }
            function fullLabel(m) {
              return m.type === 1 || m.type === 4 ? (m.iface ? m.iface + "." : "") + m.member : label(m);
            }
            // Error names are drawn whole: they are what a reader scans the page for.
            function fit(m, n) { return m.type === 3 ? label(m) : clip(label(m), n); }
            function clip(s, n) { return s.length > n ? s.slice(0, n - 1) + "\\u2026" : s; }
            function visible() {
              const fp = document.getElementById("filter-peer").value.trim().toLowerCase();
              const fi = document.getElementById("filter-iface").value.trim().toLowerCase();
              const peerOk = D.peers.map(p => !fp || peerLabel(p).toLowerCase().includes(fp));
              const idx = [];
              D.messages.forEach((m, i) => {
                const pOk = !fp || peerOk[m.from] || (m.to >= 0 && peerOk[m.to]);
                const iOk = !fi || iface(m).toLowerCase().includes(fi);
                if (pOk && iOk) idx.push(i);
              });
              let cols;
              if (!fp && !fi) {
                cols = D.peers.map((p, i) => i);
              } else {
                const used = new Set();
                idx.forEach(i => { used.add(D.messages[i].from); if (D.messages[i].to >= 0) used.add(D.messages[i].to); });
                D.peers.forEach((p, i) => { if (fp && peerOk[i]) used.add(i); });
                cols = [...used].sort((a, b) => a - b);
              }
              return {idx: idx, cols: cols};
            }
            function draw() {
              const v = visible();
              while (svg.firstChild) svg.removeChild(svg.firstChild);
              const defs = el("defs", {}, svg);
              for (const [id, color] of [["a-call", "#1f5fbf"], ["a-reply", "#2f8f2f"], ["a-error", "#d00000"], ["a-signal", "#8a3fb8"]]) {
                const mk = el("marker", {id: id, viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 8, markerHeight: 8, orient: "auto-start-reverse"}, defs);
                el("path", {d: "M0,0 L10,5 L0,10 z", fill: color}, mk);
              }
              const x = {};
              v.cols.forEach((c, k) => { x[c] = LEFT + COL / 2 + k * COL; });
              const height = TOP + (v.idx.length + 1) * ROW;
              svg.setAttribute("width", LEFT + Math.max(1, v.cols.length) * COL + 20);
              svg.setAttribute("height", height + 10);
              const peersG = el("g", {id: "peers"}, svg);
              for (const c of v.cols) {
                const p = D.peers[c];
                const g = el("g", {"class": "peer", "data-peer": p.id, "data-column": c}, peersG);
                el("line", {"class": "lifeline", x1: x[c], y1: TOP - 10, x2: x[c], y2: height}, g);
                el("rect", {"class": "peer-box", x: x[c] - COL / 2 + 6, y: 4, width: COL - 12, height: TOP - 16, rx: 4}, g);
                const t = text(g, x[c], 20, clip(p.id, 26), "peer-name");
                el("title", {}, t).textContent = peerLabel(p);
                p.names.slice(0, 2).forEach((n, j) => text(g, x[c], 35 + j * 13, clip(n, 28), "peer-wk"));
                if (p.names.length > 2) text(g, x[c], 61, "+" + (p.names.length - 2) + " more", "peer-wk");
              }
              const rowOf = {};
              v.idx.forEach((i, r) => { rowOf[i] = r; });
              const msgsG = el("g", {id: "messages"}, svg);
              v.idx.forEach((i, r) => {
                const m = D.messages[i];
                const y = TOP + (r + 1) * ROW;
                const kind = TYPES[m.type] || "call";
                const g = el("g", {"class": "msg " + kind, "data-index": i, "data-type": TYPE_NAMES[m.type] || m.type,
                  "data-from": D.peers[m.from].id, "data-serial": m.serial}, msgsG);
                if (m.to >= 0) g.setAttribute("data-to", D.peers[m.to].id);
                if (m.member) g.setAttribute("data-member", m.member);
                if (m.iface) g.setAttribute("data-interface", m.iface);
                if (m.replyOf >= 0) g.setAttribute("data-reply-of", m.replyOf);
                if (m.reply >= 0) g.setAttribute("data-reply", m.reply);
                if (m.type === 3) g.setAttribute("data-error-name", m.error);
                if (m.type === 4 && m.to < 0) g.setAttribute("data-broadcast", "true");
                el("rect", {"class": "hit", x: 0, y: y - ROW + 4, width: svg.getAttribute("width"), height: ROW}, g);
                text(g, LEFT - 8, y, m.t >= 0 ? "+" + (m.t / 1e6).toFixed(6) : "#" + i, "time", "end");
                const x1 = x[m.from];
                const marker = "url(#a-" + kind + ")";
                if (m.to < 0) {
                  const xs = v.cols.map(c => x[c]);
                  el("line", {"class": "bcast", x1: Math.min(...xs) - 20, y1: y, x2: Math.max(...xs) + 20, y2: y}, g);
                  el("circle", {cx: x1, cy: y, r: 5}, g);
                  text(g, x1 + 8, y - 5, fit(m, 48), "label", "start");
                } else if (m.to === m.from) {
                  el("path", {d: "M" + x1 + "," + (y - 8) + " h30 v10 h-30", "marker-end": marker}, g);
                  text(g, x1 + 34, y - 2, fit(m, 40), "label", "start");
                } else {
                  const x2 = x[m.to];
                  el("line", {x1: x1, y1: y, x2: x2, y2: y, "marker-end": marker}, g);
                  text(g, (x1 + x2) / 2, y - 5, fit(m, Math.max(12, Math.floor(Math.abs(x2 - x1) / 6.5))), "label");
                }
                if (m.replyOf >= 0 && rowOf[m.replyOf] !== undefined) {
                  const yc = TOP + (rowOf[m.replyOf] + 1) * ROW;
                  el("line", {"class": "join", x1: x1 + 3, y1: yc, x2: x1 + 3, y2: y}, g);
                }
                el("title", {}, g).textContent = "#" + i + " " + fullLabel(m);
                g.addEventListener("click", () => show(i));
              });
              document.getElementById("summary").textContent = v.idx.length + " of " + D.messages.length
                + " messages, " + v.cols.length + " of " + D.peers.length + " peers"
                + (D.undecodable ? ", " + D.undecodable + " undecodable packet(s) skipped" : "")
                + (D.truncated ? ", " + D.truncated + " truncated packet(s) skipped" : "");
            }
            function row(tb, k, v) {
              const tr = document.createElement("tr");
              const a = document.createElement("td"); a.className = "k"; a.textContent = k;
              const b = document.createElement("td"); b.textContent = v;
              tr.appendChild(a); tr.appendChild(b); tb.appendChild(tr);
            }
            function show(i) {
              const m = D.messages[i];
              for (const s of svg.querySelectorAll(".msg.selected,.msg.joined")) s.classList.remove("selected", "joined");
              const sel = svg.querySelector('.msg[data-index="' + i + '"]');
              if (sel) sel.classList.add("selected");
              for (const j of [m.replyOf, m.reply]) {
                const o = j >= 0 ? svg.querySelector('.msg[data-index="' + j + '"]') : null;
                if (o) o.classList.add("joined");
              }
              if (sel) sel.classList.add("joined");
              while (details.firstChild) details.removeChild(details.firstChild);
              const h = document.createElement("h3");
              h.textContent = "#" + i + " " + (TYPE_NAMES[m.type] || m.type);
              details.appendChild(h);
              const t = document.createElement("table");
              t.id = "detail-fields";
              const tb = document.createElement("tbody");
              t.appendChild(tb);
              if (m.t >= 0) row(tb, "time", "+" + (m.t / 1e6).toFixed(6) + " s");
              row(tb, "serial", m.serial);
              if (m.type === 2 || m.type === 3) row(tb, "reply_serial", m.replySerial);
              row(tb, "flags", "0x" + m.flags.toString(16));
              for (const [k, f] of [["sender", "sender"], ["destination", "destination"], ["path", "path"],
                  ["interface", "iface"], ["member", "member"], ["error_name", "error"], ["signature", "signature"]]) {
                if (m[f] !== undefined) row(tb, k, m[f]);
              }
              if (m.fds) row(tb, "unix_fds", m.fds);
              row(tb, "length", m.length + " bytes");
              if (m.replyOf >= 0) row(tb, "answers", "#" + m.replyOf + " " + fullLabel(D.messages[m.replyOf]));
              if (m.reply >= 0) row(tb, "answered by", "#" + m.reply + " " + fullLabel(D.messages[m.reply]));
              details.appendChild(t);
              const bh = document.createElement("h4"); bh.textContent = "Body"; details.appendChild(bh);
              const pre = document.createElement("pre"); pre.id = "detail-body";
              pre.textContent = m.body || "(empty)";
              details.appendChild(pre);
            }
            document.getElementById("filter-peer").addEventListener("input", draw);
            document.getElementById("filter-iface").addEventListener("input", draw);
            // A link can carry the filters and a selected message: #peer=..&iface=..&msg=N
            const hash = new URLSearchParams(location.hash.slice(1));
            if (hash.has("peer")) document.getElementById("filter-peer").value = hash.get("peer");
            if (hash.has("iface")) document.getElementById("filter-iface").value = hash.get("iface");
            draw();
            const sel = Number(hash.get("msg"));
            if (hash.has("msg") && Number.isInteger(sel) && sel >= 0 && sel < D.messages.length) show(sel);
            document.body.setAttribute("data-drawn", "true");
            })();
            </script>
            </body></html>
            """;
}
