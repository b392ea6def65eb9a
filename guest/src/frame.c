/* Frame encoding and TLV parsing with strict bounds checks; the rest of the agent trusts
 * lengths only after they have passed through here. */
#include "frame.h"

#include <stdlib.h>
#include <string.h>

int obuf_init(struct obuf *b, size_t cap)
{
    b->data = malloc(cap);
    b->cap = cap;
    b->off = b->len = b->head_left = 0;
    return b->data ? 0 : -1;
}

void obuf_free(struct obuf *b)
{
    free(b->data);
    b->data = NULL;
    b->cap = b->off = b->len = b->head_left = 0;
}

uint8_t *obuf_reserve(struct obuf *b, size_t n)
{
    size_t need = HDR_LEN + n;
    if (n > MAX_PAYLOAD || need > obuf_room(b))
        return NULL;
    if (b->off + b->len + need > b->cap) {
        /* compact lazily: a memmove of at most the capacity, only when the tail is short */
        memmove(b->data, b->data + b->off, b->len);
        b->off = 0;
    }
    return b->data + b->off + b->len + HDR_LEN;
}

void obuf_commit(struct obuf *b, uint8_t type, uint8_t flags, uint32_t stream, size_t n)
{
    uint8_t *h = b->data + b->off + b->len;
    put32(h, (uint32_t)n);
    h[4] = type;
    h[5] = flags;
    h[6] = h[7] = 0;
    put32(h + 8, stream);
    b->len += HDR_LEN + n;
}

int obuf_frame(struct obuf *b, uint8_t type, uint8_t flags, uint32_t stream, const void *payload,
               size_t n)
{
    uint8_t *p = obuf_reserve(b, n);
    if (!p)
        return -1;
    if (n)
        memcpy(p, payload, n);
    obuf_commit(b, type, flags, stream, n);
    return 0;
}

void obuf_consume(struct obuf *b, size_t n)
{
    while (n) {
        /* frames are committed whole, so a frame boundary always has its full header */
        if (b->head_left == 0)
            b->head_left = HDR_LEN + get32(b->data + b->off);
        size_t k = n < b->head_left ? n : b->head_left;
        b->off += k;
        b->len -= k;
        b->head_left -= k;
        n -= k;
    }
    if (b->len == 0)
        b->off = 0;
}

void obuf_drop(struct obuf *b)
{
    b->len = b->head_left;
    if (b->len == 0)
        b->off = 0;
}

void obuf_reset(struct obuf *b) { b->off = b->len = b->head_left = 0; }

int tlv_next(struct tlv_it *it, uint16_t *tag, const uint8_t **val, uint32_t *vlen)
{
    if (it->left == 0)
        return 0;
    if (it->left < 6)
        return -1;
    uint32_t n = get32(it->p + 2);
    if (n > it->left - 6)
        return -1;
    *tag = get16(it->p);
    *vlen = n;
    *val = it->p + 6;
    it->p += 6 + n;
    it->left -= 6 + n;
    return 1;
}

void tlv_put(struct tlv_w *w, uint16_t tag, const void *val, size_t n)
{
    if (w->overflow || n > w->cap || w->cap - w->len < 6 + n) {
        w->overflow = 1;
        return;
    }
    put16(w->buf + w->len, tag);
    put32(w->buf + w->len + 2, (uint32_t)n);
    if (n)
        memcpy(w->buf + w->len + 6, val, n);
    w->len += 6 + n;
}

void tlv_u8(struct tlv_w *w, uint16_t tag, uint8_t v) { tlv_put(w, tag, &v, 1); }

void tlv_u32(struct tlv_w *w, uint16_t tag, uint32_t v)
{
    uint8_t b[4];
    put32(b, v);
    tlv_put(w, tag, b, 4);
}

void tlv_u64(struct tlv_w *w, uint16_t tag, uint64_t v)
{
    uint8_t b[8];
    put64(b, v);
    tlv_put(w, tag, b, 8);
}

void tlv_str(struct tlv_w *w, uint16_t tag, const char *s) { tlv_put(w, tag, s, strlen(s)); }
