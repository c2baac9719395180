// RewriteBenchmark — what TrackingRewriter costs per message at intake.
//
// Builds two HTML newsletters (about 5 KB with 20 links, about 200 KB with 400 links), each as
// multipart/alternative with a plain text part and a quoted-printable HTML part, then parses and
// rewrites each many times (links, open pixel, unsubscribe placeholder, header edits) and prints
// the median of several rounds in µs per message and µs per KB of HTML.
//
//   swift run -c release --package-path Benchmarks RewriteBenchmark [rounds]
import MailMessage

struct Case {
    var name: String
    var linkCount: Int
    var targetHTMLBytes: Int
    var iterations: Int
}

/// A table-based newsletter of about `targetBytes` of HTML with `linkCount` links.
func newsletterHTML(targetBytes: Int, linkCount: Int) -> String {
    var rows: [String] = []
    for i in 0..<linkCount {
        rows.append("""
        <tr><td style="padding:8px 16px;font-size:14px;color:#333333"><a href="https://www.shop.example/p/\(i)?utm_source=nl&amp;utm_campaign=spring" \
        style="color:#1a73e8">Product \(i)</a> — in stock</td></tr>
        """)
    }
    let head = """
    <!DOCTYPE html><html><head><meta charset="utf-8"><title>Spring</title>
    <style>body{margin:0;padding:0} a{color:#1a73e8}</style></head>
    <body style="margin:0;padding:0;background:#f4f4f4">
    <table role="presentation" width="600" cellpadding="0" cellspacing="0" border="0" align="center">
    """
    let tail = """
    </table>
    <p style="font-size:11px;color:#999999">You subscribed at shop.example. <a href="{{unsubscribe_url}}">Unsubscribe</a></p>
    </body></html>
    """
    var html = head + rows.joined(separator: "\n") + "\n"
    // Pad with link-free text to reach the target size.
    let filler = "<tr><td style=\"padding:8px 16px;color:#666666\">Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.</td></tr>\n"
    while html.utf8.count + tail.utf8.count + filler.utf8.count <= targetBytes { html += filler }
    return html + tail
}

func message(html: String) -> [UInt8] {
    let qp = QuotedPrintable.encode(Array(html.replacing("\n", with: "\r\n").utf8))
    let text = "Spring sale: https://www.shop.example/spring\r\nUnsubscribe: {{unsubscribe_url}}\r\n"
    let head = """
    From: Shop <news@shop.example>\r
    To: customer@example.com\r
    Subject: Spring sale\r
    Message-ID: <bench@shop.example>\r
    X-Tern-Track: yes\r
    MIME-Version: 1.0\r
    Content-Type: multipart/alternative; boundary="b"\r
    \r
    --b\r
    Content-Type: text/plain; charset=utf-8\r
    \r
    \(text)\r
    --b\r
    Content-Type: text/html; charset=utf-8\r
    Content-Transfer-Encoding: quoted-printable\r
    \r

    """
    return Array(head.utf8) + qp + Array("\r\n--b--\r\n".utf8)
}

let options = TrackingOptions(
    clickTracking: { _, index in "https://t.tern.example/c/01HZX4J8K2M3N4P5Q6R7S8T9V0/\(index)?s=3f9a1c" },
    openPixelURL: "https://t.tern.example/o/01HZX4J8K2M3N4P5Q6R7S8T9V0.gif",
    unsubscribeURL: "https://t.tern.example/u/01HZX4J8K2M3N4P5Q6R7S8T9V0?s=77aa01",
    removedHeaderFields: ["X-Tern-Track"],
    addedHeaderFields: [
        AddedHeaderField(name: "List-Unsubscribe", value: "<https://t.tern.example/u/01HZX4J8K2M3N4P5Q6R7S8T9V0?s=77aa01>"),
        AddedHeaderField(name: "List-Unsubscribe-Post", value: "List-Unsubscribe=One-Click"),
    ]
)

let rounds = CommandLine.arguments.count > 1 ? max(1, Int(CommandLine.arguments[1]) ?? 5) : 5
let cases = [
    Case(name: "5 KB", linkCount: 20, targetHTMLBytes: 5_000, iterations: 4_000),
    Case(name: "200 KB", linkCount: 400, targetHTMLBytes: 200_000, iterations: 100),
]
let clock = ContinuousClock()
print("TrackingRewriter: parse + rewrite (links, pixel, placeholder, headers), median of \(rounds) rounds")
for c in cases {
    let html = newsletterHTML(targetBytes: c.targetHTMLBytes, linkCount: c.linkCount)
    let bytes = message(html: html)
    let kb = Double(html.utf8.count) / 1024
    // Check the work once.
    let check = try TrackingRewriter.rewrite(bytes, options: options)
    precondition(check.originalLinks.count == c.linkCount && check.openPixelCount == 1)
    var perMessage: [Double] = []
    var sink = 0
    for _ in 0..<rounds {
        let elapsed = try clock.measure {
            for _ in 0..<c.iterations {
                sink &+= try TrackingRewriter.rewrite(bytes, options: options).bytes.count
            }
        }
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        perMessage.append(seconds * 1e6 / Double(c.iterations))
    }
    perMessage.sort()
    let median = perMessage[perMessage.count / 2]
    let line = "\(c.name) HTML (\(html.utf8.count) B HTML, \(bytes.count) B message, \(c.linkCount) links): "
        + "\(format(median)) µs/message, \(format(median / kb)) µs/KB of HTML "
        + "(min \(format(perMessage[0])), max \(format(perMessage[perMessage.count - 1])) µs/message, \(c.iterations) per round)"
    print(line)
    if sink == 42 { print("") } // keep the work
}

/// One decimal place, without libm.
func format(_ value: Double) -> String {
    let tenths = Int(value * 10 + 0.5)
    return "\(tenths / 10).\(tenths % 10)"
}
