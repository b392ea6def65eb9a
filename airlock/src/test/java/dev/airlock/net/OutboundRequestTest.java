package dev.airlock.net;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.Test;

/** How a guest request head is checked and rewritten before it goes to its destination. */
class OutboundRequestTest {
    private static final Secret TOKEN = Secret.create("TOKEN", "real-value", "api.test");
    private static final EgressProxy.HostPort API = new EgressProxy.HostPort("api.test", 443);

    private static OutboundRequest.Prepared prepare(String head, String scheme, EgressProxy.HostPort hp)
            throws Exception {
        return OutboundRequest.prepare(
                HttpHead.parse(head.getBytes(StandardCharsets.ISO_8859_1)), scheme, hp, List.of(TOKEN));
    }

    private static String sent(OutboundRequest.Prepared p) {
        assertThat(p).isInstanceOf(OutboundRequest.Ready.class);
        return new String(((OutboundRequest.Ready) p).head(), StandardCharsets.ISO_8859_1);
    }

    private static OutboundRequest.Refused refused(OutboundRequest.Prepared p) {
        assertThat(p).isInstanceOf(OutboundRequest.Refused.class);
        return (OutboundRequest.Refused) p;
    }

    @Test
    void secretsGoOnlyIntoCredentialHeadersAndBoundHostsGetIdentityEncoding() throws Exception {
        String ph = TOKEN.placeholder();
        String out = sent(prepare(
                "GET /v1 HTTP/1.1\r\nHost: api.test\r\nAuthorization: Bearer " + ph + "\r\nX-Api-Key: " + ph
                        + "\r\nUser-Agent: a/" + ph + "\r\nAccept-Encoding: gzip, br\r\nTE: gzip",
                "https",
                API));
        assertThat(out)
                .startsWith("GET /v1 HTTP/1.1\r\nHost: api.test\r\n")
                .contains("Authorization: Bearer real-value\r\n")
                .contains("X-Api-Key: real-value\r\n")
                .contains("User-Agent: a/" + ph + "\r\n")
                .contains("Accept-Encoding: identity\r\n")
                .doesNotContain("gzip")
                .endsWith("\r\n\r\n");
        assertThat(OutboundRequest.isCredentialHeader("Private-Token")).isTrue();
        assertThat(OutboundRequest.isCredentialHeader("Cookie")).isTrue();
        assertThat(OutboundRequest.isCredentialHeader("Referer")).isFalse();
        assertThat(OutboundRequest.isCredentialHeader("Host")).isFalse();
    }

    @Test
    void thePlainProxyRewritesToOriginFormAndClosesAfterOneRequest() throws Exception {
        EgressProxy.HostPort hp = new EgressProxy.HostPort("api.test", 8080);
        String out = sent(prepare(
                "POST http://api.test:8080/a?b=1 HTTP/1.1\r\nProxy-Authorization: x\r\nConnection: keep-alive\r\n"
                        + "Content-Length: 5",
                "http",
                hp));
        assertThat(out)
                .startsWith("POST /a?b=1 HTTP/1.1\r\nHost: api.test:8080\r\n")
                .doesNotContain("Proxy-Authorization")
                .doesNotContain("keep-alive")
                .endsWith("Connection: close\r\n\r\n");
    }

    @Test
    void refusesWhatAServerCouldReadAnotherWay() throws Exception {
        assertThat(refused(prepare("TRACE / HTTP/1.1\r\nHost: api.test", "https", API))
                        .status())
                .isEqualTo(405);
        assertThat(refused(prepare("GET / HTTP/1.1\r\nHost: other.test", "https", API))
                        .reason())
                .isEqualTo("the Host header (other.test) names another host than the CONNECT (api.test)");
        assertThat(refused(prepare("GET https://other.test/ HTTP/1.1\r\nHost: api.test", "https", API))
                        .status())
                .isEqualTo(403);
        assertThat(refused(prepare("GET / HTTP/1.1\r\nHost: api.test\r\nHost: other.test", "https", API))
                        .status())
                .isEqualTo(400);
        assertThat(refused(prepare(
                                "POST / HTTP/1.1\r\nHost: api.test\r\nContent-Length: 3\r\nTransfer-Encoding: chunked",
                                "https",
                                API))
                        .reason())
                .contains("Content-Length and Transfer-Encoding together");
        assertThat(refused(prepare(
                                "POST / HTTP/1.1\r\nHost: api.test\r\nTransfer-Encoding: gzip, chunked", "https", API))
                        .status())
                .isEqualTo(501);
        assertThat(refused(prepare("POST / HTTP/1.1\r\nHost: api.test\r\nContent-Length: +3", "https", API))
                        .status())
                .isEqualTo(400);
        assertThat(refused(prepare("GET /x HTTP/2\r\nHost: api.test", "https", API))
                        .status())
                .isEqualTo(400);
        assertThatThrownBy(() -> HttpHead.parse(
                        "GET / HTTP/1.1\r\nHost: api.test\r\n folded".getBytes(StandardCharsets.ISO_8859_1)))
                .hasMessageContaining("folded");
        assertThatThrownBy(
                        () -> HttpHead.parse("GET / HTTP/1.1\r\nHost : api.test".getBytes(StandardCharsets.ISO_8859_1)))
                .hasMessageContaining("not a token");
        assertThatThrownBy(() -> HttpHead.parse("GET / HTTP/1.1\r\nX: a\u0000b".getBytes(StandardCharsets.ISO_8859_1)))
                .hasMessageContaining("control character");
    }
}
