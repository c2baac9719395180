import ArgumentParser
import Foundation
import MailReports

/// `tern report parse FILE…`: what Tern reads from report messages, without the store.
struct ReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Read bounce, delay, complaint and auto-reply messages as Tern's MX does.",
        subcommands: [Parse.self]
    )

    struct Parse: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print what each message file is (bounce, delay, complaint, auto_reply, delivered, unknown) and, per recipient, the address, action, status, diagnostic and bounce class. Touches no store.")
        @Flag(help: "Print one JSON object per file, one per line.") var json = false
        @Argument(help: "Message files (RFC 5322, as received).") var files: [String]

        func run() async throws {
            var unreadable = 0
            for file in files {
                guard let data = FileManager.default.contents(atPath: file) else {
                    FileHandle.standardError.write(Data("cannot read \(file)\n".utf8))
                    unreadable += 1
                    continue
                }
                let report = ReportParser.parse([UInt8](data))
                if json {
                    let encoder = JSONEncoder()
                    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
                    print(String(decoding: try encoder.encode(ParsedReport(file: file, report: report)), as: UTF8.self))
                } else {
                    print(Self.text(file: file, report: report))
                }
            }
            if unreadable > 0 { throw ExitCode(1) }
        }

        static func text(file: String, report: DeliveryReport) -> String {
            var lines = ["\(file): \(report.kind.rawValue) (\(report.format))"]
            for recipient in report.recipients {
                var line = "  \(recipient.address) \(recipient.action.rawValue)"
                if let status = recipient.status { line += " \(status)" }
                if let bounceClass = recipient.bounceClass { line += " \(bounceClass.rawValue)" }
                if recipient.suppress { line += " suppress" }
                if let diagnostic = recipient.diagnostic { line += ": \(diagnostic)" }
                lines.append(line)
            }
            if let feedback = report.feedback {
                lines.append("  feedback type \(feedback.feedbackType.isEmpty ? "(none)" : feedback.feedbackType)"
                    + (feedback.userAgent.map { " from \($0)" } ?? ""))
            }
            if let returned = report.returned {
                if let id = returned.messageID { lines.append("  returned Message-ID <\(id)>") }
                if let path = returned.returnPath { lines.append("  returned Return-Path <\(path)>") }
            }
            return lines.joined(separator: "\n")
        }
    }
}

/// The JSON form of one parsed report file.
struct ParsedReport: Encodable {
    var file: String
    var kind: String
    var format: String
    var recipients: [Recipient]
    var feedback: Feedback?
    var returned: Returned?
    var reportingMTA: String?
    var originalEnvelopeID: String?

    struct Recipient: Encodable {
        var address: String
        var originalRecipient: String?
        var action: String
        var status: String?
        var diagnostic: String?
        var remoteMTA: String?
        var bounceClass: String?
        var suppress: Bool

        enum CodingKeys: String, CodingKey {
            case address, action, status, diagnostic, suppress
            case originalRecipient = "original_recipient"
            case remoteMTA = "remote_mta"
            case bounceClass = "bounce_class"
        }
    }

    struct Feedback: Encodable {
        var feedbackType: String
        var userAgent: String?
        var originalRcptTo: [String]
        var originalMailFrom: String?
        var arrivalDate: String?
        var sourceIP: String?
        var reportedDomain: String?

        enum CodingKeys: String, CodingKey {
            case feedbackType = "feedback_type"
            case userAgent = "user_agent"
            case originalRcptTo = "original_rcpt_to"
            case originalMailFrom = "original_mail_from"
            case arrivalDate = "arrival_date"
            case sourceIP = "source_ip"
            case reportedDomain = "reported_domain"
        }
    }

    struct Returned: Encodable {
        var messageID: String?
        var returnPath: String?
        var from: String?
        var to: String?
        var subject: String?

        enum CodingKeys: String, CodingKey {
            case messageID = "message_id"
            case returnPath = "return_path"
            case from, to, subject
        }
    }

    enum CodingKeys: String, CodingKey {
        case file, kind, format, recipients, feedback, returned
        case reportingMTA = "reporting_mta"
        case originalEnvelopeID = "original_envelope_id"
    }

    init(file: String, report: DeliveryReport) {
        self.file = file
        kind = report.kind.rawValue
        format = report.format
        recipients = report.recipients.map {
            Recipient(
                address: $0.address, originalRecipient: $0.originalRecipient, action: $0.action.rawValue, status: $0.status,
                diagnostic: $0.diagnostic, remoteMTA: $0.remoteMTA, bounceClass: $0.bounceClass?.rawValue, suppress: $0.suppress)
        }
        feedback = report.feedback.map {
            Feedback(
                feedbackType: $0.feedbackType, userAgent: $0.userAgent, originalRcptTo: $0.originalRcptTo,
                originalMailFrom: $0.originalMailFrom, arrivalDate: $0.arrivalDate, sourceIP: $0.sourceIP,
                reportedDomain: $0.reportedDomain)
        }
        returned = report.returned.map {
            Returned(messageID: $0.messageID, returnPath: $0.returnPath, from: $0.from, to: $0.to, subject: $0.subject)
        }
        reportingMTA = report.reportingMTA
        originalEnvelopeID = report.originalEnvelopeID
    }
}
