package dev.airlock.ociruntime;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.airlock.wire.Json;
import java.nio.ByteBuffer;
import org.junit.jupiter.api.Test;

/**
 * The compiled programs, run by a small classic-BPF interpreter here (the subset the compiler
 * emits), on the calls a process could make: the right action for each system call, 64-bit
 * argument comparisons across the two 32-bit halves, foreign architectures.
 */
class SeccompFilterTest {
    private static final int X86_64 = 0xC000003E;
    private static final int I386 = 0x40000003;
    private static final int ALLOW = 0x7fff0000;
    private static final int ERRNO = 0x00050000;
    private static final int KILL_PROCESS = 0x80000000;

    private static final int MKDIR = 83;
    private static final int GETCWD = 79;
    private static final int PERSONALITY = 135;
    private static final int CLONE = 56;

    @Test
    void rulesDecideByNameAndTheDefaultTakesTheRest() {
        byte[] p = compile("""
                {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
                 "syscalls": [{"names": ["mkdir", "no_such_call", "mkdirat"], "action": "SCMP_ACT_ERRNO"},
                              {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5}]}""");
        assertThat(run(p, X86_64, MKDIR)).isEqualTo(ERRNO | 1);
        assertThat(run(p, X86_64, GETCWD)).isEqualTo(ERRNO | 5);
        assertThat(run(p, X86_64, 0)).isEqualTo(ALLOW);
        // another architecture, not listed: killed, as libseccomp does
        assertThat(run(p, I386, MKDIR)).isEqualTo(KILL_PROCESS);
        // an x32 call (x86_64's audit arch, bit 30 set)
        assertThat(run(p, X86_64, 0x40000000 | MKDIR)).isEqualTo(KILL_PROCESS);
        byte[] listed = compile("""
                {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]}""");
        assertThat(run(listed, I386, MKDIR)).isEqualTo(ERRNO | 38);
    }

    @Test
    void argumentComparisonsUseAllSixtyFourBits() {
        long big = 0x1_0000_0005L;
        byte[] p = compile("""
                {"defaultAction": "SCMP_ACT_ERRNO",
                 "syscalls": [
                   {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                    "args": [{"index": 0, "value": 4294967301, "op": "SCMP_CMP_EQ"}]},
                   {"names": ["getcwd"], "action": "SCMP_ACT_ALLOW",
                    "args": [{"index": 1, "value": 4294967301, "op": "SCMP_CMP_GT"}]},
                   {"names": ["mkdir"], "action": "SCMP_ACT_ALLOW",
                    "args": [{"index": 0, "value": 4294967301, "op": "SCMP_CMP_LE"},
                             {"index": 1, "value": 7, "op": "SCMP_CMP_NE"}]},
                   {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                    "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]}]}""");
        assertThat(run(p, X86_64, PERSONALITY, big)).isEqualTo(ALLOW);
        assertThat(run(p, X86_64, PERSONALITY, 5)).isEqualTo(ERRNO | 1);
        assertThat(run(p, X86_64, GETCWD, 0, big + 1)).isEqualTo(ALLOW);
        assertThat(run(p, X86_64, GETCWD, 0, 0x2_0000_0000L)).isEqualTo(ALLOW);
        assertThat(run(p, X86_64, GETCWD, 0, big)).isEqualTo(ERRNO | 1);
        assertThat(run(p, X86_64, GETCWD, 0, 0xFFFF_FFFFL)).isEqualTo(ERRNO | 1);
        assertThat(run(p, X86_64, MKDIR, big, 8)).isEqualTo(ALLOW);
        assertThat(run(p, X86_64, MKDIR, 0xFFFF_FFFFL, 0x7_0000_0007L)).isEqualTo(ALLOW);
        assertThat(run(p, X86_64, MKDIR, big, 7)).isEqualTo(ERRNO | 1);
        assertThat(run(p, X86_64, MKDIR, big + 1, 8)).isEqualTo(ERRNO | 1);
        // a failed rule leaves the call number for the next one
        assertThat(run(p, X86_64, CLONE, 0x11)).isEqualTo(ALLOW);
        assertThat(run(p, X86_64, CLONE, 0x10000000)).isEqualTo(ERRNO | 1);
    }

    @Test
    void whatItCannotHonourIsRefusedByName() {
        assertThatThrownBy(() -> compile("{\"defaultAction\": \"SCMP_ACT_NOTIFY\"}"))
                .hasMessageContaining("SCMP_ACT_NOTIFY");
        assertThatThrownBy(() ->
                        compile("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"architectures\": [\"SCMP_ARCH_Z80\"]}"))
                .hasMessageContaining("SCMP_ARCH_Z80");
        assertThatThrownBy(() -> compile("""
                        {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW",
                          "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_ALMOST"}]}]}""")).hasMessageContaining("SCMP_CMP_ALMOST");
        assertThatThrownBy(() -> compile("{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"defaultErrnoRet\": 70000}"))
                .hasMessageContaining("out of range");
    }

    @Test
    void everyKnownCallInOneAllowListFitsTheKernelsLimit() {
        StringBuilder names = new StringBuilder();
        for (int nr = 0; nr < 460; nr++) {
            names.append(names.isEmpty() ? "" : ",")
                    .append('"')
                    .append(nameOf(nr))
                    .append('"');
        }
        byte[] p = compile("{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"syscalls\": [{\"names\": [" + names
                + "], \"action\": \"SCMP_ACT_ALLOW\"}]}");
        assertThat(p.length / 8).isLessThan(4096);
        assertThat(run(p, X86_64, MKDIR)).isEqualTo(ALLOW);
    }

    private static String nameOf(int nr) {
        return switch (nr) {
            case 0 -> "read";
            case 83 -> "mkdir";
            default -> "x" + nr;
        };
    }

    private static byte[] compile(String json) {
        return SeccompFilter.compile(Json.MAPPER.readTree(json));
    }

    /** Runs the program on struct seccomp_data {nr, arch, ip, args[6]} (little-endian, as on x86_64). */
    private static int run(byte[] program, int arch, int nr, long... args) {
        ByteBuffer data = ByteBuffer.allocate(64).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        data.putInt(0, nr).putInt(4, arch);
        for (int i = 0; i < args.length; i++) {
            data.putLong(16 + 8 * i, args[i]);
        }
        ByteBuffer code = ByteBuffer.wrap(program);
        int a = 0;
        for (int pc = 0, steps = 0; steps < 100_000; steps++) {
            int op = code.getShort(pc * 8) & 0xffff;
            int jt = code.get(pc * 8 + 2) & 0xff;
            int jf = code.get(pc * 8 + 3) & 0xff;
            int k = code.getInt(pc * 8 + 4);
            switch (op) {
                case 0x20 -> a = data.getInt(k);
                case 0x54 -> a &= k;
                case 0x06 -> {
                    return k;
                }
                case 0x15 -> pc += a == k ? jt : jf;
                case 0x25 -> pc += Integer.compareUnsigned(a, k) > 0 ? jt : jf;
                case 0x35 -> pc += Integer.compareUnsigned(a, k) >= 0 ? jt : jf;
                default -> throw new AssertionError("unexpected opcode " + op);
            }
            pc++;
        }
        throw new AssertionError("the program does not end");
    }
}
