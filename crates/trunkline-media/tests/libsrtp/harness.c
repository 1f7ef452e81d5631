/*
 * libsrtp's side of tests/libsrtp.rs: protects and unprotects packets with
 * libsrtp 2 so the test can check trunkline-media against it.
 *
 *   harness SUITE KEY_AND_SALT_HEX
 *
 * SUITE is an SDES name (AES_CM_128_HMAC_SHA1_80, AES_CM_128_HMAC_SHA1_32,
 * AEAD_AES_128_GCM, AEAD_AES_256_GCM). Each line of standard input is
 *
 *   protect-rtp|unprotect-rtp|protect-rtcp|unprotect-rtcp HEX
 *
 * and gets one line on standard output: "ok HEX" with the result, or
 * "err N" with libsrtp's srtp_err_status_t. Protecting uses one session
 * (any outbound SSRC), unprotecting another (any inbound SSRC), both keyed
 * with the same master key and salt, as the two ends of a call would be.
 * Exits 0 at the end of input, 2 on bad arguments or input.
 */

#include <srtp2/srtp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The largest packet the test sends, with room for what libsrtp adds. */
#define MAX_PACKET 2048
#define ROOM (MAX_PACKET + SRTP_MAX_TRAILER_LEN + 4)

static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decodes `hex` into `out`; the byte count, or -1 if it is not hex. */
static int unhex(const char *hex, unsigned char *out, int room) {
    size_t len = strlen(hex);
    if (len % 2 != 0 || (int)(len / 2) > room) return -1;
    for (size_t i = 0; i < len / 2; i++) {
        int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) return -1;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return (int)(len / 2);
}

/* Sets `policy`'s transforms for `suite`; 0 if the suite is unknown. */
static int set_suite(srtp_policy_t *policy, const char *suite) {
    if (strcmp(suite, "AES_CM_128_HMAC_SHA1_80") == 0) {
        srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&policy->rtp);
        srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&policy->rtcp);
    } else if (strcmp(suite, "AES_CM_128_HMAC_SHA1_32") == 0) {
        /* SRTCP keeps the 80-bit tag (RFC 4568 §6.2.2). */
        srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32(&policy->rtp);
        srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&policy->rtcp);
    } else if (strcmp(suite, "AEAD_AES_128_GCM") == 0) {
        srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy->rtp);
        srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy->rtcp);
    } else if (strcmp(suite, "AEAD_AES_256_GCM") == 0) {
        srtp_crypto_policy_set_aes_gcm_256_16_auth(&policy->rtp);
        srtp_crypto_policy_set_aes_gcm_256_16_auth(&policy->rtcp);
    } else {
        return 0;
    }
    return 1;
}

static int session(srtp_t *out, const char *suite, unsigned char *key, int key_len,
                   srtp_ssrc_type_t type) {
    srtp_policy_t policy;
    memset(&policy, 0, sizeof policy);
    if (!set_suite(&policy, suite)) {
        fprintf(stderr, "unknown suite %s\n", suite);
        return 0;
    }
    /* libsrtp counts the salt in the key length. */
    if (key_len != policy.rtp.cipher_key_len) {
        fprintf(stderr, "%s takes %d bytes of key and salt, not %d\n", suite,
                policy.rtp.cipher_key_len, key_len);
        return 0;
    }
    policy.ssrc.type = type;
    policy.key = key;
    policy.window_size = 1024;
    policy.next = NULL;
    srtp_err_status_t status = srtp_create(out, &policy);
    if (status != srtp_err_status_ok) {
        fprintf(stderr, "srtp_create(%s): error %d\n", suite, (int)status);
        return 0;
    }
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s SUITE KEY_AND_SALT_HEX\n", argv[0]);
        return 2;
    }
    unsigned char key[SRTP_MAX_KEY_LEN];
    int key_len = unhex(argv[2], key, sizeof key);
    if (key_len < 0) {
        fprintf(stderr, "the key is not hex\n");
        return 2;
    }
    srtp_err_status_t status = srtp_init();
    if (status != srtp_err_status_ok) {
        fprintf(stderr, "srtp_init: error %d\n", (int)status);
        return 2;
    }
    srtp_t sender, receiver;
    if (!session(&sender, argv[1], key, key_len, ssrc_any_outbound) ||
        !session(&receiver, argv[1], key, key_len, ssrc_any_inbound)) {
        return 2;
    }

    /* An operation, a space, hex, a line break. */
    static char line[32 + 2 * ROOM + 2];
    static unsigned char packet[ROOM];
    while (fgets(line, sizeof line, stdin) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';
        char *hex = strchr(line, ' ');
        if (hex == NULL) {
            fprintf(stderr, "no packet on line: %s\n", line);
            return 2;
        }
        *hex++ = '\0';
        int len = unhex(hex, packet, MAX_PACKET);
        if (len < 0) {
            fprintf(stderr, "bad hex on line: %s\n", line);
            return 2;
        }
        if (strcmp(line, "protect-rtp") == 0) {
            status = srtp_protect(sender, packet, &len);
        } else if (strcmp(line, "unprotect-rtp") == 0) {
            status = srtp_unprotect(receiver, packet, &len);
        } else if (strcmp(line, "protect-rtcp") == 0) {
            status = srtp_protect_rtcp(sender, packet, &len);
        } else if (strcmp(line, "unprotect-rtcp") == 0) {
            status = srtp_unprotect_rtcp(receiver, packet, &len);
        } else {
            fprintf(stderr, "unknown operation %s\n", line);
            return 2;
        }
        if (status != srtp_err_status_ok) {
            printf("err %d\n", (int)status);
        } else {
            printf("ok ");
            for (int i = 0; i < len; i++) printf("%02x", packet[i]);
            printf("\n");
        }
        fflush(stdout);
    }
    srtp_dealloc(sender);
    srtp_dealloc(receiver);
    srtp_shutdown();
    return 0;
}
