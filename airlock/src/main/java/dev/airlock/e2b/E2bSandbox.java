package dev.airlock.e2b;

import java.time.Instant;
import java.util.Map;

/**
 * What the E2B front end keeps about a sandbox it made, beside the Airlock sandbox of the same
 * name: E2B's own fields (template, metadata, the envd access token, when it ends).
 *
 * @param sandboxId E2B's id, which is also the Airlock sandbox's name
 * @param templateId the template it was made from (the Airlock image)
 * @param accessToken what envd requests must carry in {@code X-Access-Token}
 * @param endAt when it is killed unless its timeout is changed
 */
record E2bSandbox(
        String sandboxId,
        String templateId,
        Map<String, String> metadata,
        Map<String, String> envs,
        String accessToken,
        Instant startedAt,
        Instant endAt) {

    E2bSandbox {
        metadata = Map.copyOf(metadata);
        envs = Map.copyOf(envs);
    }

    E2bSandbox withEndAt(Instant end) {
        return new E2bSandbox(sandboxId, templateId, metadata, envs, accessToken, startedAt, end);
    }
}
