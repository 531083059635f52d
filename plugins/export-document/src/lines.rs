//! A text document built line by line, as the text templates (and the host's Markdown
//! summaries) are written: every line ends with `\n`.

/// A document built line by line.
#[derive(Debug, Default)]
pub struct Lines(String);

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

    /// Append `n` copies of `c` as a line (a separator).
    pub fn rule(&mut self, c: char, n: usize) {
        self.line(c.to_string().repeat(n));
    }

    /// Append a multi-line block (an embedded summary) followed by one blank line. The
    /// block's own trailing line breaks are dropped first, so exactly one blank line
    /// follows it however the host ended it.
    pub fn block(&mut self, block: &str) {
        self.line(block.trim_end_matches(['\n', '\r']));
        self.blank();
    }

    /// Characters written so far.
    pub fn chars(&self) -> usize {
        self.0.chars().count()
    }

    pub fn finish(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_rules_and_blocks() {
        let mut out = Lines::default();
        out.line("雾");
        out.rule('=', 3);
        out.blank();
        assert_eq!(out.chars(), 7);
        for summary in ["a\nb", "a\nb\n", "a\nb\r\n\n\n"] {
            let mut out = Lines::default();
            out.block(summary);
            assert_eq!(out.finish(), "a\nb\n\n", "{summary:?}");
        }
    }
}
