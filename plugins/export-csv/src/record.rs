//! CSV records: RFC 4180 quoting, CRLF line ends, and a formula-injection guard.
//!
//! Hand-written rather than with the `csv` crate: it is a dozen lines, and the guard has to
//! run on each field before quoting anyway.

/// Append one record (`fields` encoded, separated by `,`, ended by CRLF) to `out`.
pub fn push(out: &mut String, fields: &[&str]) {
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_field(out, field);
    }
    out.push_str("\r\n");
}

/// Append one encoded field to `out`.
///
/// Formula guard: spreadsheets (Excel, LibreOffice, Google Sheets) evaluate a cell that
/// starts with `=`, `+`, `-` or `@` as a formula, and some also after a leading TAB or CR;
/// conversation text is user- and LLM-written, so a line like `=HYPERLINK(...)` or
/// `=cmd|' /C calc'!A0` would run when the file is opened. A leading `'` makes the cell
/// text (the OWASP "CSV injection" recommendation); it is visible in plain-text viewers,
/// which is the accepted cost.
///
/// Quoting (RFC 4180): a field containing `,`, `"`, CR or LF is put in double quotes, with
/// every `"` doubled; other fields are written as they are.
fn push_field(out: &mut String, field: &str) {
    let guard = field.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let quote = field.contains([',', '"', '\r', '\n']);
    if quote {
        out.push('"');
    }
    if guard {
        out.push('\'');
    }
    if quote {
        out.push_str(&field.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(field);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(fields: &[&str]) -> String {
        let mut out = String::new();
        push(&mut out, fields);
        out
    }

    #[test]
    fn plain_fields_are_written_as_they_are() {
        assert_eq!(line(&["a", "b c", "", "雾"]), "a,b c,,雾\r\n");
        assert_eq!(line(&[]), "\r\n");
    }

    #[test]
    fn separators_quotes_and_line_breaks_are_quoted() {
        assert_eq!(line(&["a,b"]), "\"a,b\"\r\n");
        assert_eq!(line(&["say \"hi\""]), "\"say \"\"hi\"\"\"\r\n");
        assert_eq!(line(&["one\ntwo"]), "\"one\ntwo\"\r\n");
        assert_eq!(line(&["one\r\ntwo", "x"]), "\"one\r\ntwo\",x\r\n");
        assert_eq!(line(&["\""]), "\"\"\"\"\r\n");
    }

    #[test]
    fn formula_starts_get_an_apostrophe() {
        for start in ["=", "+", "-", "@", "\t"] {
            let field = format!("{start}1+1");
            assert_eq!(line(&[&field]), format!("'{field}\r\n"), "{start:?}");
        }
        // A field that needs both: the apostrophe goes inside the quotes.
        assert_eq!(
            line(&["=HYPERLINK(\"http://x\",\"y\")"]),
            "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\"\r\n"
        );
        assert_eq!(line(&["\rboo"]), "\"'\rboo\"\r\n");
        // Only the start counts.
        assert_eq!(line(&["1-1=0"]), "1-1=0\r\n");
    }
}
