package dev.airlock.image.layer;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * What every Airlock image has, added to a pulled or imported image's tree after its layers: the
 * directories the guest agent and container runtime mount on or write to ({@code /etc},
 * {@code /dev}, {@code /proc}, {@code /sys}, {@code /run}, {@code /tmp}), and the unprivileged
 * user {@code airlock} (uid and gid 1000, home {@code /home/airlock}) that {@code -u airlock}
 * names. Nothing the image has is replaced: an existing {@code airlock} entry is left as it is,
 * and when another user already has uid 1000 (node, ubuntu) {@code airlock} becomes a second name
 * for that uid. No shell or package is added: an image without {@code /bin/sh} stays without one,
 * and the returned notes say what that means.
 */
public final class ImageEssentials {
    public static final int AIRLOCK_UID = 1000;
    private static final int MAX_DB_BYTES = 4 << 20;

    private ImageEssentials() {}

    /** Adds what is missing; returns notes for the user (one line each) about what could not be. */
    public static List<String> add(LayerUnpacker tree) throws IOException {
        List<String> notes = new ArrayList<>();
        for (String dir : List.of("etc", "dev", "proc", "sys", "run")) {
            tree.makeDirectory(dir, 0755, 0, 0);
        }
        tree.makeDirectory("tmp", 01777, 0, 0);
        boolean hasSh = tree.isExecutable("bin/sh");
        String shell = tree.isExecutable("bin/bash") ? "/bin/bash" : "/bin/sh";
        try {
            addUser(tree, shell, notes);
        } catch (IOException e) {
            // e.g. /etc/passwd is a symlink: the image keeps its own, -u airlock will not resolve
            notes.add("no airlock user added: " + e.getMessage());
        }
        if (!hasSh) {
            notes.add("the image has no /bin/sh: commands run only as exec'd programs; airlock shell, sh -c,"
                    + " airlock cp of directories and microVM templates need a shell in the image");
        }
        return notes;
    }

    private static void addUser(LayerUnpacker tree, String shell, List<String> notes) throws IOException {
        byte[] passwdBytes = tree.readFile("etc/passwd", MAX_DB_BYTES);
        if (passwdBytes == null && tree.exists("etc/passwd")) {
            notes.add("/etc/passwd in the image is not a regular file inside it: no airlock user added");
            return;
        }
        String passwd = passwdBytes == null ? "" : new String(passwdBytes, StandardCharsets.UTF_8);
        String uidOwner = null;
        boolean hasAirlock = false;
        for (String line : passwd.split("\n")) {
            String[] f = line.split(":", -1);
            if (f.length >= 3) {
                if (f[0].equals("airlock")) {
                    hasAirlock = true;
                }
                if (f[2].equals(String.valueOf(AIRLOCK_UID)) && uidOwner == null) {
                    uidOwner = f[0];
                }
            }
        }
        if (hasAirlock) {
            return;
        }
        StringBuilder p = new StringBuilder(passwd);
        if (passwd.isEmpty()) {
            p.append("root:x:0:0:root:/root:").append(shell).append('\n');
        } else if (!passwd.endsWith("\n")) {
            p.append('\n');
        }
        p.append("airlock:x:" + AIRLOCK_UID + ":" + AIRLOCK_UID + ":Airlock:/home/airlock:")
                .append(shell)
                .append('\n');
        tree.writeFile("etc/passwd", p.toString().getBytes(StandardCharsets.UTF_8), 0644);
        if (uidOwner != null) {
            notes.add("uid " + AIRLOCK_UID + " is '" + uidOwner + "' in this image; 'airlock' is added as a second name"
                    + " for it");
        }

        byte[] groupBytes = tree.readFile("etc/group", MAX_DB_BYTES);
        if (groupBytes != null || !tree.exists("etc/group")) {
            String group = groupBytes == null ? "" : new String(groupBytes, StandardCharsets.UTF_8);
            boolean gidTaken = false;
            for (String line : group.split("\n")) {
                String[] f = line.split(":", -1);
                if (f.length >= 3 && (f[0].equals("airlock") || f[2].equals(String.valueOf(AIRLOCK_UID)))) {
                    gidTaken = true;
                }
            }
            if (!gidTaken) {
                StringBuilder g = new StringBuilder(group);
                if (group.isEmpty()) {
                    g.append("root:x:0:\n");
                } else if (!group.endsWith("\n")) {
                    g.append('\n');
                }
                g.append("airlock:x:" + AIRLOCK_UID + ":\n");
                tree.writeFile("etc/group", g.toString().getBytes(StandardCharsets.UTF_8), 0644);
            }
        }
        byte[] shadow = tree.readFile("etc/shadow", MAX_DB_BYTES);
        if (shadow != null) {
            String s = new String(shadow, StandardCharsets.UTF_8);
            // a locked password, as useradd leaves it: no login by password, su from root works
            String entry = (s.isEmpty() || s.endsWith("\n") ? "" : "\n") + "airlock:!:1::::::\n";
            tree.writeFile("etc/shadow", (s + entry).getBytes(StandardCharsets.UTF_8), 0640);
        }
        tree.makeDirectory("home/airlock", 0750, AIRLOCK_UID, AIRLOCK_UID);
    }
}
