package dev.airlock.engine;

import dev.airlock.sandbox.Sandbox;
import dev.airlock.sandbox.SandboxException;
import dev.airlock.sandbox.SandboxState;

/**
 * What each operation does in each state: the one table the engine consults before it acts.
 * {@link SandboxState#next()} says which state changes exist; this says which operation may
 * make them, which ones do nothing, and what a user who asks for an impossible one is told.
 */
public final class Lifecycle {
    private Lifecycle() {}

    /** The operations users ask for on an existing sandbox. */
    public enum Operation {
        START,
        STOP,
        KILL,
        PAUSE,
        RESUME,
        FORK,
        REMOVE,
        /** Remove, killing it first if it runs ({@code rm -f}). */
        FORCE_REMOVE,
        /** Open a guest session: exec, files, terminals. */
        SESSION
    }

    /** The verdict for one operation in one state. */
    public enum Verdict {
        /** Go ahead. */
        PROCEED,
        /** Nothing to do: the sandbox already is where the operation would take it. */
        NOTHING,
        /** Resume it first, then go ahead (a paused sandbox asked to stop: its unwritten files are in its saved memory). */
        RESUME_FIRST,
        /** Refused: {@link #check} throws. */
        REFUSED
    }

    /** The verdict for {@code op} on a sandbox in {@code state}. */
    public static Verdict verdict(Operation op, SandboxState state) {
        return switch (op) {
            case START ->
                switch (state) {
                    case CREATED, STOPPED, FAILED -> Verdict.PROCEED;
                    case RUNNING, PAUSED -> Verdict.REFUSED;
                };
            case STOP ->
                switch (state) {
                    case RUNNING -> Verdict.PROCEED;
                    case PAUSED -> Verdict.RESUME_FIRST;
                    case CREATED, STOPPED, FAILED -> Verdict.NOTHING;
                };
            case KILL, PAUSE, FORK, SESSION ->
                switch (state) {
                    case RUNNING -> Verdict.PROCEED;
                    case CREATED, STOPPED, FAILED, PAUSED -> Verdict.REFUSED;
                };
            case RESUME ->
                switch (state) {
                    case PAUSED -> Verdict.PROCEED;
                    case CREATED, RUNNING, STOPPED, FAILED -> Verdict.REFUSED;
                };
            case REMOVE ->
                switch (state) {
                    case CREATED, STOPPED, FAILED, PAUSED -> Verdict.PROCEED;
                    case RUNNING -> Verdict.REFUSED;
                };
            case FORCE_REMOVE -> Verdict.PROCEED;
        };
    }

    /** The verdict for {@code op} on {@code s}, or the error that tells the user what to do instead. */
    public static Verdict check(Operation op, Sandbox s) {
        Verdict v = verdict(op, s.state());
        if (v == Verdict.REFUSED) {
            throw SandboxException.conflict(refusal(op, s));
        }
        return v;
    }

    private static String refusal(Operation op, Sandbox s) {
        String n = s.name();
        String is = "sandbox '" + n + "' is " + s.state().label();
        String startIt = s.state() == SandboxState.PAUSED
                ? "; resume it with: airlock resume " + n
                : "; start it with: airlock start " + n;
        return switch (op) {
            case START ->
                s.state() == SandboxState.RUNNING
                        ? "sandbox '" + n + "' is already running"
                        : is + "; resume it with: airlock resume " + n;
            case KILL -> "sandbox '" + n + "' is not running";
            case PAUSE -> is + "; only a running sandbox can be paused";
            case RESUME -> is + ", not paused";
            case FORK -> is + "; only a running sandbox can be forked";
            case REMOVE -> is + "; stop it first (airlock stop " + n + ") or force removal with: airlock rm -f " + n;
            case SESSION -> is + startIt;
            case STOP, FORCE_REMOVE -> is;
        };
    }
}
