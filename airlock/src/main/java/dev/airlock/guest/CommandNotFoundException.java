package dev.airlock.guest;

/** The program to exec does not exist in the guest (ENOENT); shells report this as status 127. */
public final class CommandNotFoundException extends GuestException {
    private static final long serialVersionUID = 1L;

    public CommandNotFoundException(String agentMessage) {
        super(ENOENT, agentMessage);
    }
}
