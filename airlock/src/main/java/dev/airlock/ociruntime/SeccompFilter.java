package dev.airlock.ociruntime;

import dev.airlock.guest.ProcessConfinement;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import tools.jackson.databind.JsonNode;

/**
 * Compiles a config.json's {@code linux.seccomp} (runtime-spec LinuxSeccomp) into a classic BPF
 * program for {@code seccomp(SECCOMP_SET_MODE_FILTER)}, which the guest agent installs in the
 * container's process just before execve. Done here on the host, in Java, so the agent carries no
 * compiler: it only checks the program's size, and the kernel verifies the program itself.
 *
 * <p>The program, for x86_64 (the only architecture the guests run): a call of another audit
 * architecture is killed unless the config lists it (libseccomp's habit), and a listed one (x86,
 * x32) fails with ENOSYS: Airlock carries no i386/x32 system call table, and the guest kernel
 * has neither ABI anyway. Then one block per system call name of each rule, in the config's
 * order, the first match deciding: {@code A == nr} and the rule's argument conditions (each
 * 64-bit comparison done on the two 32-bit halves classic BPF can load), then the rule's action;
 * last the default action. Names this table does not know are skipped, as runc and libseccomp
 * skip names the running kernel lacks. Everything else the spec allows but this cannot honour
 * (the notify action and its listener, filter flags, unknown actions, operators or arches) is
 * refused by name.
 */
final class SeccompFilter {
    private static final int AUDIT_ARCH_X86_64 = 0xC000003E;
    private static final int X32_SYSCALL_BIT = 0x40000000;

    private static final int RET_KILL_PROCESS = 0x80000000;
    private static final int RET_KILL_THREAD = 0;
    private static final int RET_TRAP = 0x00030000;
    private static final int RET_ERRNO = 0x00050000;
    private static final int RET_TRACE = 0x7ff00000;
    private static final int RET_LOG = 0x7ffc0000;
    private static final int RET_ALLOW = 0x7fff0000;
    private static final int EPERM = 1;
    private static final int ENOSYS = 38;

    // classic BPF opcodes (linux/filter.h)
    private static final int LD_W_ABS = 0x20;
    private static final int JEQ_K = 0x15;
    private static final int JGT_K = 0x25;
    private static final int JGE_K = 0x35;
    private static final int AND_K = 0x54;
    private static final int RET_K = 0x06;

    // struct seccomp_data offsets
    private static final int NR = 0;
    private static final int ARCH = 4;
    private static final int ARGS = 16;

    private static final Set<String> KNOWN_ARCHES = Set.of(
            "SCMP_ARCH_X86",
            "SCMP_ARCH_X86_64",
            "SCMP_ARCH_X32",
            "SCMP_ARCH_ARM",
            "SCMP_ARCH_AARCH64",
            "SCMP_ARCH_MIPS",
            "SCMP_ARCH_MIPS64",
            "SCMP_ARCH_MIPS64N32",
            "SCMP_ARCH_MIPSEL",
            "SCMP_ARCH_MIPSEL64",
            "SCMP_ARCH_MIPSEL64N32",
            "SCMP_ARCH_PPC",
            "SCMP_ARCH_PPC64",
            "SCMP_ARCH_PPC64LE",
            "SCMP_ARCH_S390",
            "SCMP_ARCH_S390X",
            "SCMP_ARCH_PARISC",
            "SCMP_ARCH_PARISC64",
            "SCMP_ARCH_RISCV64");

    private static final Map<String, Integer> SYSCALLS = loadTable();

    private SeccompFilter() {}

    /** The program for {@code linux.seccomp}, as {@link ProcessConfinement#seccomp()} wants it. */
    static byte[] compile(JsonNode seccomp) {
        onlyKeys(
                seccomp,
                Set.of(
                        "defaultAction",
                        "defaultErrnoRet",
                        "architectures",
                        "flags",
                        "syscalls",
                        "listenerPath",
                        "listenerMetadata"));
        if (!seccomp.path("listenerPath").asString("").isEmpty()) {
            throw BundleConfig.refused("linux.seccomp.listenerPath", "the notify action's listener is not supported");
        }
        for (JsonNode f : seccomp.path("flags")) {
            throw BundleConfig.refused("linux.seccomp.flags " + f.asString(), "no seccomp filter flags are supported");
        }
        boolean x86Listed = false;
        for (JsonNode a : seccomp.path("architectures")) {
            String arch = a.asString("");
            if (!KNOWN_ARCHES.contains(arch)) {
                throw BundleConfig.refused("linux.seccomp.architectures " + arch, "not a libseccomp architecture");
            }
            x86Listed |= arch.equals("SCMP_ARCH_X86") || arch.equals("SCMP_ARCH_X32");
        }
        int defaultErrno = seccomp.path("defaultErrnoRet").asInt(EPERM);
        int defaultAction = action("linux.seccomp.defaultAction", text(seccomp, "defaultAction"), defaultErrno);

        Program p = new Program();
        p.load(ARCH);
        int foreign = x86Listed ? RET_ERRNO | ENOSYS : RET_KILL_PROCESS;
        p.jump(JEQ_K, AUDIT_ARCH_X86_64, 1, 0);
        p.ret(foreign);
        p.load(NR);
        // x32 calls come with the x86_64 audit arch and this bit set
        p.jump(JGE_K, X32_SYSCALL_BIT, 0, 1);
        p.ret(foreign);
        int i = 0;
        for (JsonNode rule : seccomp.path("syscalls")) {
            String where = "linux.seccomp.syscalls[" + i++ + "]";
            onlyKeys(rule, Set.of("names", "action", "errnoRet", "args"));
            int ret = action(
                    where + ".action",
                    text(rule, "action"),
                    rule.path("errnoRet").asInt(EPERM));
            List<Condition> conditions = new ArrayList<>();
            for (JsonNode arg : rule.path("args")) {
                conditions.add(condition(where, arg));
            }
            for (JsonNode n : rule.path("names")) {
                Integer nr = SYSCALLS.get(n.asString(""));
                if (nr != null) {
                    p.rule(nr, conditions, ret);
                }
            }
        }
        p.ret(defaultAction);
        return p.bytes();
    }

    private record Condition(int index, String op, long value, long valueTwo) {}

    private static Condition condition(String where, JsonNode arg) {
        onlyKeys(arg, Set.of("index", "value", "valueTwo", "op"));
        int index = arg.path("index").asInt(-1);
        if (index < 0 || index > 5) {
            throw new RuntimeError(where + ".args index " + arg.path("index") + " is not 0 to 5");
        }
        String op = text(arg, "op");
        if (!Set.of(
                        "SCMP_CMP_NE",
                        "SCMP_CMP_LT",
                        "SCMP_CMP_LE",
                        "SCMP_CMP_EQ",
                        "SCMP_CMP_GE",
                        "SCMP_CMP_GT",
                        "SCMP_CMP_MASKED_EQ")
                .contains(op)) {
            throw BundleConfig.refused(where + ".args op " + op, "not a seccomp comparison");
        }
        return new Condition(index, op, u64(arg.path("value")), u64(arg.path("valueTwo")));
    }

    /** A JSON uint64 (values above 2^63 wrap into the negative longs, bit for bit). */
    private static long u64(JsonNode n) {
        return n.isMissingNode() || n.isNull() ? 0 : n.bigIntegerValue().longValue();
    }

    private static int action(String where, String name, int errno) {
        if (errno < 0 || errno > 0xffff) {
            throw new RuntimeError(where + ": errnoRet " + errno + " is out of range");
        }
        return switch (name) {
            case "SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD" -> RET_KILL_THREAD;
            case "SCMP_ACT_KILL_PROCESS" -> RET_KILL_PROCESS;
            case "SCMP_ACT_TRAP" -> RET_TRAP;
            case "SCMP_ACT_ERRNO" -> RET_ERRNO | errno;
            case "SCMP_ACT_TRACE" -> RET_TRACE | errno;
            case "SCMP_ACT_LOG" -> RET_LOG;
            case "SCMP_ACT_ALLOW" -> RET_ALLOW;
            case "SCMP_ACT_NOTIFY" ->
                throw BundleConfig.refused(where + " " + name, "user notification is not supported");
            default -> throw BundleConfig.refused(where + " " + name, "not a seccomp action");
        };
    }

    /** A program under construction; jump offsets are relative, as classic BPF has them. */
    private static final class Program {
        private final List<int[]> code = new ArrayList<>();

        void load(int offset) {
            code.add(new int[] {LD_W_ABS, 0, 0, offset});
        }

        void jump(int op, int k, int jt, int jf) {
            if (jt > 255 || jf > 255) {
                throw new IllegalStateException("BPF jump too far: " + jt + "/" + jf);
            }
            code.add(new int[] {op, jt, jf, k});
        }

        void ret(int k) {
            code.add(new int[] {RET_K, 0, 0, k});
        }

        /**
         * {@code if (nr == A && conditions) return ret;} leaving A holding nr. The conditions load
         * argument words into A, so a failed one jumps to a reload of nr at the block's end.
         */
        void rule(int nr, List<Condition> conditions, int ret) {
            if (conditions.isEmpty()) {
                jump(JEQ_K, nr, 0, 1);
                ret(ret);
                return;
            }
            List<int[]> body = new ArrayList<>();
            for (Condition c : conditions) {
                body.addAll(check(c));
            }
            int bodyLen = body.size() + 1; // the ret
            jump(JEQ_K, nr, 0, bodyLen + 1);
            int failAt = body.size() + 1; // index of the reload, counted from the body's start
            for (int j = 0; j < body.size(); j++) {
                int[] ins = body.get(j);
                // FAIL marks a jump to the reload; PASS_END a jump past this check
                for (int t = 1; t <= 2; t++) {
                    if (ins[t] == FAIL) {
                        ins[t] = failAt - j - 1;
                    }
                }
                if (ins[1] > 255 || ins[2] > 255) {
                    throw new RuntimeError("a seccomp rule has too many argument conditions");
                }
                code.add(ins);
            }
            ret(ret);
            load(NR);
        }

        byte[] bytes() {
            if (code.size() > ProcessConfinement.MAX_FILTER_INSTRUCTIONS) {
                throw new RuntimeError("linux.seccomp compiles to " + code.size() + " BPF instructions, more than"
                        + " the kernel's " + ProcessConfinement.MAX_FILTER_INSTRUCTIONS);
            }
            ByteBuffer b = ByteBuffer.allocate(code.size() * 8);
            for (int[] ins : code) {
                b.putShort((short) ins[0]).put((byte) ins[1]).put((byte) ins[2]).putInt(ins[3]);
            }
            return b.array();
        }
    }

    private static final int FAIL = -1;

    /**
     * One 64-bit comparison as instructions whose jumps are either FAIL or relative within the
     * check; falling off its end means it held.
     */
    private static List<int[]> check(Condition c) {
        int hiOff = ARGS + 8 * c.index() + 4;
        int loOff = ARGS + 8 * c.index();
        int vhi = (int) (c.value() >>> 32);
        int vlo = (int) c.value();
        List<int[]> out = new ArrayList<>();
        switch (c.op()) {
            case "SCMP_CMP_EQ" -> {
                out.add(ld(hiOff));
                out.add(j(JEQ_K, vhi, 0, FAIL));
                out.add(ld(loOff));
                out.add(j(JEQ_K, vlo, 0, FAIL));
            }
            case "SCMP_CMP_NE" -> {
                out.add(ld(hiOff));
                out.add(j(JEQ_K, vhi, 0, 2)); // high halves differ: holds
                out.add(ld(loOff));
                out.add(j(JEQ_K, vlo, FAIL, 0));
            }
            case "SCMP_CMP_MASKED_EQ" -> {
                int dhi = (int) (c.valueTwo() >>> 32);
                int dlo = (int) c.valueTwo();
                out.add(ld(hiOff));
                out.add(new int[] {AND_K, 0, 0, vhi});
                out.add(j(JEQ_K, dhi, 0, FAIL));
                out.add(ld(loOff));
                out.add(new int[] {AND_K, 0, 0, vlo});
                out.add(j(JEQ_K, dlo, 0, FAIL));
            }
            case "SCMP_CMP_GT", "SCMP_CMP_GE" -> {
                // hi > vhi holds; hi < vhi fails; equal: compare the low halves
                out.add(ld(hiOff));
                out.add(j(JGT_K, vhi, 3, 0));
                out.add(j(JEQ_K, vhi, 0, FAIL));
                out.add(ld(loOff));
                out.add(j(c.op().equals("SCMP_CMP_GT") ? JGT_K : JGE_K, vlo, 0, FAIL));
            }
            case "SCMP_CMP_LT", "SCMP_CMP_LE" -> {
                // hi > vhi fails; hi < vhi holds; equal: compare the low halves
                out.add(ld(hiOff));
                out.add(j(JGT_K, vhi, FAIL, 0));
                out.add(j(JEQ_K, vhi, 0, 2));
                out.add(ld(loOff));
                out.add(j(c.op().equals("SCMP_CMP_LT") ? JGE_K : JGT_K, vlo, FAIL, 0));
            }
            default -> throw new IllegalStateException(c.op());
        }
        // A jump of 0 inside a check means "fall through"; relative jumps that land on the
        // check's end are already counted from the instruction after the jump.
        return out;
    }

    private static int[] ld(int offset) {
        return new int[] {LD_W_ABS, 0, 0, offset};
    }

    private static int[] j(int op, int k, int jt, int jf) {
        return new int[] {op, jt, jf, k};
    }

    private static void onlyKeys(JsonNode node, Set<String> allowed) {
        if (!node.isObject()) {
            throw new RuntimeError("linux.seccomp: expected an object, found " + node.getNodeType());
        }
        for (String k : node.propertyNames()) {
            if (!allowed.contains(k)) {
                throw BundleConfig.refused("linux.seccomp " + k, "not a field Airlock knows");
            }
        }
    }

    private static String text(JsonNode node, String key) {
        JsonNode v = node.path(key);
        if (!v.isString() || v.asString().isEmpty()) {
            throw new RuntimeError("linux.seccomp: " + key + " is missing or not a string");
        }
        return v.asString();
    }

    /** System call numbers by name, from the resource generated from Linux's asm/unistd_64.h. */
    private static Map<String, Integer> loadTable() {
        Map<String, Integer> table = new HashMap<>();
        try (InputStream in = Objects.requireNonNull(
                        SeccompFilter.class.getResourceAsStream("syscalls-x86_64.txt"), "syscalls-x86_64.txt");
                BufferedReader r = new BufferedReader(new InputStreamReader(in, StandardCharsets.US_ASCII))) {
            for (String line; (line = r.readLine()) != null; ) {
                if (line.isBlank() || line.startsWith("#")) {
                    continue;
                }
                String[] f = line.trim().split(" ");
                table.put(f[0], Integer.parseInt(f[1]));
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return Map.copyOf(table);
    }
}
