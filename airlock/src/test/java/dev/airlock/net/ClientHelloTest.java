package dev.airlock.net;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.ByteBuffer;
import java.util.List;
import java.util.Optional;
import javax.net.ssl.SNIHostName;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLParameters;
import org.junit.jupiter.api.Test;

/** The SNI reader against ClientHellos made by the JDK's own TLS client. */
class ClientHelloTest {
    private static byte[] clientHello(String serverName) throws Exception {
        SSLEngine engine = SSLContext.getDefault().createSSLEngine(serverName, 443);
        engine.setUseClientMode(true);
        SSLParameters params = engine.getSSLParameters();
        params.setServerNames(List.of(new SNIHostName(serverName)));
        engine.setSSLParameters(params);
        ByteBuffer out = ByteBuffer.allocate(engine.getSession().getPacketBufferSize());
        engine.wrap(ByteBuffer.allocate(0), out);
        out.flip();
        byte[] bytes = new byte[out.remaining()];
        out.get(bytes);
        return bytes;
    }

    @Test
    void readsTheServerName() throws Exception {
        byte[] hello = clientHello("api.example.com");
        assertThat(ClientHello.peek(hello, hello.length))
                .isEqualTo(new ClientHello.Peek.Hello(Optional.of("api.example.com")));
    }

    @Test
    void asksForMoreUntilTheWholeHelloIsThere() throws Exception {
        byte[] hello = clientHello("api.example.com");
        assertThat(ClientHello.peek(hello, 3)).isInstanceOf(ClientHello.Peek.NeedMore.class);
        assertThat(ClientHello.peek(hello, hello.length - 1)).isInstanceOf(ClientHello.Peek.NeedMore.class);
    }

    @Test
    void tellsOtherProtocolsApart() {
        byte[] ssh = "SSH-2.0-OpenSSH_9.2\r\n".getBytes(java.nio.charset.StandardCharsets.US_ASCII);
        assertThat(ClientHello.peek(ssh, ssh.length)).isInstanceOf(ClientHello.Peek.NotTls.class);
        byte[] junk = {0x16, 3, 1, 0, 4, 2, 0, 0, 0};
        assertThat(ClientHello.peek(junk, junk.length)).isInstanceOf(ClientHello.Peek.Malformed.class);
    }
}
