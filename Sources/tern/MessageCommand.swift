import ArgumentParser
import Foundation
import TernCore
import TernHTTP

/// `tern message ID`: a message's recipients and the timeline of each one's events.
struct MessageCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "message",
        abstract: "Show a message: each recipient's state and the timeline of its events.")

    @OptionGroup var options: ConfigOption
    @Argument(help: "The message id (16 hexadecimal digits, as in the 250 reply).") var id: String
    @Flag(help: "Print JSON (as GET /api/v1/messages/ID).") var json = false

    func run() async throws {
        guard let messageID = MessageID(id.lowercased()) else {
            throw ValidationError("'\(id)' is not a message id (16 hexadecimal digits)")
        }
        let found = try await withStore(try options.load()) { store in
            (try await MessageView.load(messageID, from: store, scope: .all), try await tenantNames(in: store))
        }
        guard let view = found.0 else { throw ValidationError("no message \(id)") }
        let tenant = view.tenant.flatMap { found.1[$0] } ?? "?"
        if json {
            try printJSON(view)
            return
        }
        print("message \(view.id)  \(view.messageIDHeader)")
        print("from <\(view.mailFrom)>  received \(view.receivedAt)  tenant \(tenant)")
        for recipient in view.recipients {
            print("")
            print("\(recipient.address)  (\(recipient.id), \(recipient.state))")
            for event in recipient.events {
                let details = event.details.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
                print("  \(event.at)  \(event.type.padding(toLength: 11, withPad: " ", startingAt: 0)) \(details)")
            }
        }
    }
}
