package dev.airlock.api;

import dev.airlock.sandbox.SandboxException;
import java.util.Collection;
import java.util.Map;
import tools.jackson.core.JacksonException;
import tools.jackson.core.TokenStreamLocation;
import tools.jackson.core.exc.StreamReadException;
import tools.jackson.databind.exc.MismatchedInputException;

/**
 * A request body the API could not read, said in the terms of the JSON the client sent: which
 * field, and what it must be. Jackson's own messages name the daemon's Java classes, which tell
 * an API user nothing.
 */
final class JsonBodyError {
    private JsonBodyError() {}

    /** {@code call}: the route, as {@code POST /v1/sandboxes}. */
    static SandboxException of(String call, JacksonException e) {
        String field = field(e);
        if (e instanceof MismatchedInputException m) {
            if (field.isEmpty()) {
                return new SandboxException(call + " needs a JSON object as its body");
            }
            return new SandboxException(call + ": field '" + field + "' must be " + expected(m.getTargetType()));
        }
        if (e instanceof StreamReadException && field.isEmpty()) {
            TokenStreamLocation at = e.getLocation();
            String where = at == null || at.getLineNr() < 1
                    ? ""
                    : " (line " + at.getLineNr() + ", column " + at.getColumnNr() + ")";
            return new SandboxException(call + ": the body is not valid JSON" + where + ": " + e.getOriginalMessage());
        }
        return new SandboxException(
                call + ": " + (field.isEmpty() ? "" : "field '" + field + "': ") + e.getOriginalMessage());
    }

    /** The field's path in the body, as {@code sandbox.env} or {@code cmd[2]}; empty for the body itself. */
    private static String field(JacksonException e) {
        StringBuilder path = new StringBuilder();
        for (JacksonException.Reference r : e.getPath()) {
            if (r.getPropertyName() != null) {
                path.append(path.isEmpty() ? "" : ".").append(r.getPropertyName());
            } else if (r.getIndex() >= 0) {
                path.append('[').append(r.getIndex()).append(']');
            }
        }
        return path.toString();
    }

    private static String expected(Class<?> type) {
        if (type == null) {
            return "of another type";
        }
        if (Number.class.isAssignableFrom(type) || (type.isPrimitive() && type != boolean.class)) {
            return "a number";
        }
        if (type == Boolean.class || type == boolean.class) {
            return "true or false";
        }
        if (CharSequence.class.isAssignableFrom(type) || type.isEnum()) {
            return "a string";
        }
        if (Collection.class.isAssignableFrom(type) || type.isArray()) {
            return "an array";
        }
        if (Map.class.isAssignableFrom(type) || type.isRecord()) {
            return "an object";
        }
        return "of another type";
    }
}
