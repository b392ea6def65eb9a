package dev.airlock.workspace;

import dev.airlock.sandbox.SandboxException;
import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * The header of a git bundle file, read and checked by the host itself before git sees the file
 * (git fetch given a path that is not a bundle treats it as a repository, and follows a {@code
 * gitdir:} file to any repository on the host). Format: Documentation/gitformat-bundle.txt, v2
 * and v3; a v3 {@code filter} (a partial bundle) is refused, the pack must follow the header.
 *
 * @param references the refs the bundle carries, in order
 * @param prerequisites the commits the receiving repository must already have
 */
public record GitBundle(List<Reference> references, List<String> prerequisites) {
    /** Far above a real header (one ref and a few prerequisites), far below what would hurt. */
    static final int MAX_HEADER_BYTES = 1 << 20;

    private static final Pattern REFNAME = Pattern.compile("HEAD|refs/[\\x21-\\x7e&&[^~^:?*\\[\\\\]]+");

    /** One {@code obj-id SP refname} line. */
    public record Reference(String objectId, String name) {}

    /** The object id of the ref named {@code name}, if the bundle carries it. */
    public Optional<String> objectId(String name) {
        return references.stream()
                .filter(r -> r.name().equals(name))
                .map(Reference::objectId)
                .findFirst();
    }

    /**
     * Reads and checks the header of {@code file}.
     *
     * @throws SandboxException if the file is not a complete, well-formed git bundle
     */
    public static GitBundle read(Path file) throws IOException {
        try (InputStream in = new BufferedInputStream(Files.newInputStream(file))) {
            return parse(in);
        }
    }

    static GitBundle parse(InputStream in) throws IOException {
        String signature = line(in);
        boolean v3 = signature.equals("# v3 git bundle");
        if (!v3 && !signature.equals("# v2 git bundle")) {
            throw notABundle("it does not start with a git bundle signature");
        }
        int hexLength = 40;
        List<Reference> references = new ArrayList<>();
        List<String> prerequisites = new ArrayList<>();
        int read = signature.length() + 1;
        boolean capabilities = v3;
        while (true) {
            String line = line(in);
            read += line.length() + 1;
            if (read > MAX_HEADER_BYTES) {
                throw notABundle("its header is longer than " + MAX_HEADER_BYTES + " bytes");
            }
            if (line.isEmpty()) {
                break;
            }
            if (capabilities && line.startsWith("@")) {
                String capability = line.substring(1);
                if (capability.equals("object-format=sha1")) {
                    hexLength = 40;
                } else if (capability.equals("object-format=sha256")) {
                    hexLength = 64;
                } else {
                    throw notABundle("it asks for the capability '" + capability + "', which a pull does not take");
                }
                continue;
            }
            capabilities = false;
            if (line.startsWith("-")) {
                prerequisites.add(objectId(line.substring(1), hexLength, line));
            } else {
                int space = line.indexOf(' ');
                if (space < 0) {
                    throw notABundle("its header line '" + shown(line) + "' is neither a ref nor a prerequisite");
                }
                String name = line.substring(space + 1);
                if (!REFNAME.matcher(name).matches() || name.contains("..") || name.contains("@{")) {
                    throw notABundle("it names a ref '" + shown(name) + "', which is not a valid ref name");
                }
                references.add(new Reference(objectId(line.substring(0, space), hexLength, line), name));
            }
        }
        if (references.isEmpty()) {
            throw notABundle("it carries no refs");
        }
        byte[] pack = in.readNBytes(4);
        if (!new String(pack, StandardCharsets.US_ASCII).equals("PACK")) {
            throw notABundle("no pack follows its header");
        }
        return new GitBundle(List.copyOf(references), List.copyOf(prerequisites));
    }

    private static String objectId(String text, int hexLength, String line) {
        String id = text.length() > hexLength && text.charAt(hexLength) == ' ' ? text.substring(0, hexLength) : text;
        if (id.length() != hexLength || !id.chars().allMatch(c -> (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            throw notABundle("its header line '" + shown(line) + "' has no valid object id");
        }
        return id;
    }

    /** One LF-terminated line; a header is ASCII text, so a NUL or a missing LF means it is not one. */
    private static String line(InputStream in) throws IOException {
        ByteArrayOutputStream line = new ByteArrayOutputStream();
        while (true) {
            int b = in.read();
            if (b < 0) {
                throw notABundle("its header ends early");
            }
            if (b == '\n') {
                return line.toString(StandardCharsets.UTF_8);
            }
            if (b == 0 || line.size() >= 4096) {
                throw notABundle("its header is not text lines");
            }
            line.write(b);
        }
    }

    private static String shown(String s) {
        String printable = s.replaceAll("[^\\x20-\\x7e]", "?");
        return printable.length() > 80 ? printable.substring(0, 80) + "..." : printable;
    }

    private static SandboxException notABundle(String why) {
        return new SandboxException(
                "the sandbox sent back a file that is not a git bundle (" + why + "); nothing was pulled");
    }
}
