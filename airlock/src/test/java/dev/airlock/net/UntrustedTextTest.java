package dev.airlock.net;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

/** Guest text made safe for one log line and for a terminal. */
class UntrustedTextTest {
    @Test
    void aLogFieldIsOneLineAndReadsBackUnambiguously() {
        String forged = "evil.test:443\n2026-01-01T00:00:00.000Z ALLOW CONNECT bank.test:443\r";
        assertThat(UntrustedText.logField(forged))
                .isEqualTo("evil.test:443\\n2026-01-01T00:00:00.000Z ALLOW CONNECT bank.test:443\\r")
                .doesNotContain("\n")
                .doesNotContain("\r");
        assertThat(UntrustedText.logField("a\\nb\tc\u0000\u001b[2J\u007f\u009b\u202e"))
                .isEqualTo("a\\\\nb\\tc\\x00\\x1b[2J\\x7f\\u009b\\u202e");
        assertThat(UntrustedText.logField("plain text, ümlauts and 漢字")).isEqualTo("plain text, ümlauts and 漢字");
    }

    @Test
    void terminalTextKeepsLinesAndTabsButNoEscapeSequence() {
        // Clear screen, an OSC 52 clipboard write, a title change, a carriage return that
        // overwrites the line, a bell, an 8-bit CSI and a right-to-left override.
        String hostile = "ok\tline\n\u001b[2J\u001b]52;c;ZXZpbA==\u0007\u001b]0;title\u0007fake\roverwritten\u009b31m"
                + "\u202etxt.exe";
        String safe = UntrustedText.forTerminal(hostile);
        assertThat(safe)
                .isEqualTo("ok\tline\n\\x1b[2J\\x1b]52;c;ZXZpbA==\\x07\\x1b]0;title\\x07fake\\roverwritten\\u009b31m"
                        + "\\u202etxt.exe");
        assertThat(safe.chars().filter(c -> c < 0x20 && c != '\n' && c != '\t')).isEmpty();
        assertThat(UntrustedText.forTerminal("C:\\path\\n")).isEqualTo("C:\\path\\n");
    }
}
