import ArgumentParser
import Foundation
import TernCore
import TernHTTP

struct InboundCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inbound",
        abstract: "Show what arrived at the MX: reports and inbound mail, and the posting of each to its route.",
        subcommands: [List.self],
        defaultSubcommand: List.self
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List arrived messages, newest first.")
        @OptionGroup var options: ConfigOption
        @Flag(help: "Print JSON.") var json = false
        @Option(help: "Show at most this many.") var limit = 100
        @OptionGroup var filter: TenantFilter

        func run() async throws {
            let messages = try await withStore(try options.load()) { store in
                try await store.inboundMessages(limit: limit, scope: try await filter.scope(in: store))
            }
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys]
                encoder.dateEncodingStrategy = .iso8601
                print(String(decoding: try encoder.encode(messages), as: UTF8.self))
                return
            }
            if messages.isEmpty {
                print("nothing has arrived")
                return
            }
            for message in messages {
                var line = "\(message.id) \(ISO8601.format(message.receivedAt)) <\(message.mailFrom)> -> "
                line += message.recipients.map { "<\($0)>" }.joined(separator: ", ")
                line += " \(message.kind ?? "unread") \(message.size) bytes"
                if let webhook = message.webhook {
                    line += " webhook \(webhook.state) after \(webhook.attempts) attempt(s)"
                    if let status = webhook.lastStatus { line += " last HTTP \(status)" }
                    if let error = webhook.lastError, webhook.state != "delivered" { line += " (\(error))" }
                    if webhook.state == "pending", let next = webhook.nextAttemptAt { line += " next \(ISO8601.format(next))" }
                }
                print(line)
            }
        }
    }
}
