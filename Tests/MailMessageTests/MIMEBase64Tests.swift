import Testing

@testable import MailMessage

struct MIMEBase64Tests {
    static let decoding: [(String, String)] = [
        ("", ""),
        ("Zg==", "f"),
        ("Zm8=", "fo"),
        ("Zm9v", "foo"),
        ("Zm9vYg==", "foob"),
        ("Zm9vYmE=", "fooba"),
        ("Zm9vYmFy", "foobar"),
        ("Zm9v\r\nYmFy\r\n", "foobar"),
        (" Zm9v YmFy ", "foobar"),
        ("Zm9v\tYm\nFy", "foobar"),
        ("Zm9vYmE", "fooba"), // missing padding
        ("Zm9vYg", "foob"),
        ("Zm9v!YmFy", "foobar"), // characters outside the alphabet are ignored (RFC 2045 §6.8)
        ("Zg==Zm9v", "f"), // data ends at the padding
    ]

    @Test(arguments: decoding)
    func decodes(encoded: String, expected: String) {
        #expect(MIMEBase64.decode(Array(encoded.utf8)) == Array(expected.utf8))
    }

    static let encoding: [(String, String)] = [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foobar", "Zm9vYmFy"),
        (String(repeating: "a", count: 57), String(repeating: "YWFh", count: 19)),
        (String(repeating: "a", count: 58), String(repeating: "YWFh", count: 19) + "\r\nYQ=="),
    ]

    @Test(arguments: encoding)
    func encodes(data: String, expected: String) {
        #expect(String(decoding: MIMEBase64.encode(Array(data.utf8)), as: UTF8.self) == expected)
    }

    @Test(arguments: [0, 1, 2, 3, 56, 57, 58, 1000])
    func roundTripsInLinesOf76(length: Int) {
        let data = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        let encoded = MIMEBase64.encode(data)
        let lines = encoded.split(separator: ASCII.lf)
        for (index, line) in lines.enumerated() {
            #expect(index == lines.count - 1 ? line.count <= 76 : line.count == 77) // 76 + CR
        }
        #expect(MIMEBase64.decode(encoded) == data)
    }
}
