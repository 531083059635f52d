//! A Markdown text built line by line: every template line ends with `\n`, as the
//! reference writes them (so a summary ends with the `\n` of its last line, or with the
//! `\n\n` of a trailing blank line).

#[derive(Debug, Default)]
pub(crate) struct Lines(String);

impl Lines {
    /// Append `text` as one line.
    pub fn line(&mut self, text: impl AsRef<str>) {
        self.0.push_str(text.as_ref());
        self.0.push('\n');
    }

    /// Append an empty line.
    pub fn blank(&mut self) {
        self.0.push('\n');
    }

    pub fn finish(self) -> String {
        self.0
    }
}
