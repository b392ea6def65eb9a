package dev.airlock.guest;

/** The kind of a file in the guest, as the TYPE field reports it. */
public enum FileType {
    FILE('f'),
    DIRECTORY('d'),
    SYMLINK('l'),
    OTHER('o');

    private final char code;

    FileType(char code) {
        this.code = code;
    }

    static FileType fromCode(int code) throws ProtocolException {
        for (FileType type : values()) {
            if (type.code == code) {
                return type;
            }
        }
        throw new ProtocolException(String.format("unknown file TYPE 0x%02X", code));
    }
}
