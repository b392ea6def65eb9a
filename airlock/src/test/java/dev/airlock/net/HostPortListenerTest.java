package dev.airlock.net;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Real sockets on the loopback: the cap of connections served at once. */
@Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class HostPortListenerTest {
    private static final InetAddress LOOPBACK = InetAddress.getLoopbackAddress();

    @Test
    void aConnectionOverTheCapIsAnsweredByBusyWhileTheOthersAreServed() throws Exception {
        CountDownLatch release = new CountDownLatch(1);
        BlockingQueue<String> handled = new LinkedBlockingQueue<>();
        ServerSocket server = new ServerSocket(0, 8, LOOPBACK);
        try (HostPortListener listener = new HostPortListener(
                        "test",
                        server,
                        1,
                        s -> {
                            handled.add("serve");
                            try (s) {
                                release.await();
                            } catch (IOException | InterruptedException e) {
                                // the test is over
                            }
                        },
                        s -> {
                            handled.add("busy");
                            close(s);
                        });
                Socket first = new Socket(LOOPBACK, listener.port());
                Socket second = new Socket(LOOPBACK, listener.port())) {
            listener.start();
            // each is handled on its own thread: in either order
            assertThat(List.of(handled.take(), handled.take())).containsExactlyInAnyOrder("serve", "busy");
            assertThat(second.getInputStream().read()).as("busy closed it").isEqualTo(-1);
            release.countDown();
            assertThat(first.getInputStream().read()).as("served, then closed").isEqualTo(-1);
        }
        // (whether a connect is refused right after is up to the JDK: it closes the descriptor
        // once the thread blocked in accept has woken)
        assertThat(server.isClosed())
                .as("closing the listener closed its socket")
                .isTrue();
    }

    private static void close(Socket s) {
        try {
            s.close();
        } catch (IOException e) {
            // closed anyway
        }
    }
}
