package dev.airlock.guest;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Writes the seed inputs of {@link InboundFuzzTarget}: well-formed agent answers for the
 * target's pending requests (streams 1 to 10, ping token 1), alone and all together, plus
 * session-level frames. Run by hand after a protocol change:
 *
 * <pre>
 * java -cp airlock/target/classes:airlock/target/test-classes dev.airlock.guest.InboundFuzzSeeds \
 *     airlock/src/test/fuzz/inbound-corpus
 * </pre>
 */
public final class InboundFuzzSeeds {
    private InboundFuzzSeeds() {}

    public static void main(String[] args) throws IOException {
        if (args.length != 1) {
            System.err.println("usage: InboundFuzzSeeds DIR");
            System.exit(2);
        }
        Path dir = Path.of(args[0]);
        Files.createDirectories(dir);
        for (Map.Entry<String, byte[]> seed : seeds().entrySet()) {
            Files.write(dir.resolve("seed-" + seed.getKey()), seed.getValue());
        }
    }

    static Map<String, byte[]> seeds() {
        Map<String, byte[]> seeds = new LinkedHashMap<>();
        seeds.put("exec", session(InboundFuzzSeeds::exec));
        seeds.put("exec-tty", session(InboundFuzzSeeds::execTty));
        seeds.put("stat", session(InboundFuzzSeeds::stat));
        seeds.put("list", session(InboundFuzzSeeds::list));
        seeds.put("read", session(InboundFuzzSeeds::read));
        seeds.put("write", session(InboundFuzzSeeds::write));
        seeds.put("connect", session(InboundFuzzSeeds::connect));
        seeds.put("accept", session(InboundFuzzSeeds::accept));
        seeds.put("queries", session(out -> {
            out.frame(FrameType.RESULT, 9, new byte[0]);
            out.frame(FrameType.RESULT, 10, new byte[0]);
            out.frame(FrameType.PONG, 0, ByteBuffer.allocate(8).putLong(1).array());
        }));
        seeds.put("everything", session(out -> {
            exec(out);
            execTty(out);
            stat(out);
            list(out);
            read(out);
            write(out);
            connect(out);
            accept(out);
            out.frame(FrameType.RESULT, 9, new byte[0]);
            out.frame(FrameType.RESULT, 10, new byte[0]);
            out.frame(FrameType.PONG, 0, ByteBuffer.allocate(8).putLong(1).array());
        }));
        seeds.put("errors", session(out -> {
            out.frame(FrameType.ERROR, 1, error(2, "sh: command not found"));
            out.frame(FrameType.ERROR, 2, error(13, "bash: permission denied"));
            out.frame(FrameType.ERROR, 3, error(2, "/etc/passwd: no such file"));
            out.frame(FrameType.ERROR, 4, error(20, "/tmp: not a directory"));
            out.frame(FrameType.ERROR, 5, error(21, "/tmp/f: is a directory"));
            out.frame(FrameType.ERROR, 6, error(28, "no space"));
            out.frame(FrameType.ERROR, 7, error(111, "connection refused"));
            out.frame(FrameType.ERROR, 8, error(98, "address in use"));
            out.frame(FrameType.ERROR, 9, error(22, "bad"));
            out.frame(FrameType.ERROR, 10, error(1, "not permitted"));
            out.frame(FrameType.ERROR, 0, error(71, "session over"));
        }));
        seeds.put("late-frames", session(out -> {
            exec(out);
            out.frame(FrameType.STDOUT, 1, "after exit".getBytes());
            out.frame(FrameType.AGENT_HELLO, 0, InboundFuzzTarget.agentHello(), Frame.HEADER_SIZE);
        }));
        return seeds;
    }

    private static void exec(Frames out) {
        out.frame(FrameType.STARTED, 1, ByteBuffer.allocate(4).putInt(42).array());
        out.frame(FrameType.STDOUT, 1, "output\n".getBytes());
        out.frame(FrameType.STDERR, 1, "warning\n".getBytes());
        out.frame(FrameType.AGENT_CREDIT, 1, ByteBuffer.allocate(4).putInt(5).array());
        out.frame(FrameType.EXIT, 1, exit(0, 0, 0));
    }

    private static void execTty(Frames out) {
        out.frame(FrameType.STARTED, 2, ByteBuffer.allocate(4).putInt(43).array());
        out.frame(FrameType.STDOUT, 2, "$ ".getBytes());
        out.frame(FrameType.EXIT, 2, exit(-1, 15, 3));
    }

    private static void stat(Frames out) {
        out.frame(
                FrameType.RESULT,
                3,
                new Tlv.Writer()
                        .u8(FileFields.TYPE, 'l')
                        .u64(FileFields.SIZE, 11)
                        .u32(FileFields.MODE, 0120777)
                        .u64(FileFields.MTIME, 1_700_000_000_123_456_789L)
                        .u32(FileFields.UID, 0)
                        .u32(FileFields.GID, 0)
                        .string(FileFields.TARGET, "/etc/passwd")
                        .bytes(99, new byte[] {1})
                        .toPayload());
    }

    private static void list(Frames out) {
        Tlv.Writer listing = new Tlv.Writer();
        String[] names = {"a", "dir", "link"};
        char[] types = {'f', 'd', 'l'};
        for (int i = 0; i < names.length; i++) {
            listing.string(FileFields.NAME, names[i])
                    .u8(FileFields.TYPE, types[i])
                    .u64(FileFields.SIZE, i * 100L)
                    .u32(FileFields.MODE, 0644)
                    .u64(FileFields.MTIME, 1_000_000_000L * i);
        }
        out.frame(FrameType.RESULT, 4, listing.toPayload());
    }

    private static void read(Frames out) {
        out.frame(FrameType.DATA, 5, "hello\n".getBytes());
        out.frame(FrameType.END, 5, ByteBuffer.allocate(8).putLong(6).array());
    }

    private static void write(Frames out) {
        out.frame(FrameType.AGENT_CREDIT, 6, ByteBuffer.allocate(4).putInt(3).array());
        out.frame(FrameType.RESULT, 6, new Tlv.Writer().u64(FileFields.SIZE, 3).toPayload());
    }

    private static void connect(Frames out) {
        out.frame(FrameType.CONNECTED, 7, new byte[0]);
        out.frame(FrameType.DATA, 7, "HTTP/1.0 200 OK\r\n\r\n".getBytes());
        out.frame(FrameType.AGENT_CREDIT, 7, ByteBuffer.allocate(4).putInt(1).array());
        out.frameWithFlags(FrameType.DATA, Frame.FLAG_EOF, 7, new byte[0]);
        out.frame(FrameType.END, 7, ByteBuffer.allocate(8).putLong(19).array());
    }

    private static void accept(Frames out) {
        out.frame(FrameType.CONNECTED, 8, new byte[0]);
        out.frame(FrameType.DATA, 8, "CONNECT example.com:443 HTTP/1.1\r\n\r\n".getBytes());
        out.frame(FrameType.ERROR, 8, error(104, "connection reset"));
    }

    private static byte[] exit(int code, int signal, int flags) {
        return ByteBuffer.allocate(9)
                .putInt(code)
                .putInt(signal)
                .put((byte) flags)
                .array();
    }

    private static byte[] error(int errno, String message) {
        byte[] text = message.getBytes();
        return ByteBuffer.allocate(4 + text.length).putInt(errno).put(text).array();
    }

    /** Frame bytes as the agent writes them. */
    private static final class Frames {
        private final ByteArrayOutputStream out = new ByteArrayOutputStream();

        void frame(FrameType type, int stream, byte[] payload) {
            frameWithFlags(type, 0, stream, payload);
        }

        /** A payload taken from a whole frame's bytes, from {@code skip} on. */
        void frame(FrameType type, int stream, byte[] frameBytes, int skip) {
            byte[] payload = new byte[frameBytes.length - skip];
            System.arraycopy(frameBytes, skip, payload, 0, payload.length);
            frame(type, stream, payload);
        }

        void frameWithFlags(FrameType type, int flags, int stream, byte[] payload) {
            try {
                new FrameWriter(out).write(new Frame(type, flags, stream, payload));
            } catch (IOException e) {
                throw new IllegalStateException(e);
            }
        }
    }

    private interface Script {
        void write(Frames out);
    }

    private static byte[] session(Script script) {
        Frames frames = new Frames();
        script.write(frames);
        return frames.out.toByteArray();
    }
}
