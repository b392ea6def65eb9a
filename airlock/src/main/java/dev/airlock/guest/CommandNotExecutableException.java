package dev.airlock.guest;

/** The program to exec exists but cannot be executed (EACCES); shells report this as status 126. */
public final class CommandNotExecutableException extends GuestException {
    private static final long serialVersionUID = 1L;

    public CommandNotExecutableException(String agentMessage) {
        super(EACCES, agentMessage);
    }
}
