/* LeakyReLU followed by dropout in one pass over memory, forward and backward, float32 and bfloat16.

   Built on the user's machine by gankit/models/native.py and called through ctypes. Each result is
   bit for bit what torch's eager leaky_relu then `x * mask` (and their backward) compute, with the
   mask of gankit/models/dropout.py: element i keeps its value when 16-bit lane i % 4 of SplitMix64
   word i / 4 (keyed by one draw from torch's RNG) is at least `threshold`. Nothing here depends on
   the thread count, so a seed gives the same masks on every machine. */

#include <stdint.h>
#include <string.h>

static inline uint64_t splitmix64(uint64_t key, uint64_t word) {
    uint64_t z = key + (word + 1) * 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline float from_bits(uint32_t u) { float f; memcpy(&f, &u, sizeof f); return f; }
static inline uint32_t to_bits(float f) { uint32_t u; memcpy(&u, &f, sizeof u); return u; }

/* a branch-free select: the signs of x and the random lanes are unpredictable, and a branch per
   element would cost a misprediction every other element */
static inline float pick(int condition, float yes, float no) {
    uint32_t m = -(uint32_t)condition;
    return from_bits((to_bits(yes) & m) | (to_bits(no) & ~m));
}

static inline float bf16_to_float(uint16_t b) { return from_bits((uint32_t)b << 16); }

/* round to nearest even, as c10::BFloat16 does */
static inline uint16_t float_to_bf16(float f) {
    uint32_t u = to_bits(f);
    if (f != f) return 0x7fc0;
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

static inline float lane_scale(uint64_t word, int lane, uint32_t threshold, float scale) {
    return pick(((word >> (16 * lane)) & 0xffffu) >= threshold, scale, 0.0f);
}

/* Each kernel runs whole words in a loop the compiler vectorises, then the tail word's lanes. */
#define LANES(body_n, key, threshold, scale, BODY)                                   \
    do {                                                                             \
        int64_t words_ = (body_n) / 4;                                               \
        _Pragma("omp parallel for schedule(static) if (words_ >= 16384)")            \
        for (int64_t w = 0; w < words_; w++) {                                       \
            uint64_t r = splitmix64(key, (uint64_t)w);                               \
            for (int lane = 0; lane < 4; lane++) {                                   \
                int64_t i = 4 * w + lane;                                            \
                float m = lane_scale(r, lane, threshold, scale);                     \
                BODY;                                                                \
            }                                                                        \
        }                                                                            \
        uint64_t r = splitmix64(key, (uint64_t)words_);                              \
        for (int64_t i = 4 * words_; i < (body_n); i++) {                            \
            float m = lane_scale(r, (int)(i - 4 * words_), threshold, scale);        \
            BODY;                                                                    \
        }                                                                            \
    } while (0)

/* y = leaky_relu(x) * m; torch's leaky_relu is x > 0 ? x : x * slope, and x * 1 is x exactly */
void leaky_dropout_forward_f32(const float *restrict x, float *restrict y, int64_t n, float slope,
                               float scale, uint32_t threshold, uint64_t key) {
    LANES(n, key, threshold, scale, y[i] = (x[i] * pick(x[i] > 0, 1.0f, slope)) * m);
}

/* dx = (dy * m) * (x > 0 ? 1 : slope): MulBackward then leaky_relu_backward */
void leaky_dropout_backward_f32(const float *restrict x, const float *restrict dy, float *restrict dx, int64_t n,
                                float slope, float scale, uint32_t threshold, uint64_t key) {
    LANES(n, key, threshold, scale, dx[i] = (dy[i] * m) * pick(x[i] > 0, 1.0f, slope));
}

/* bfloat16: torch computes each op in float and rounds its result to bfloat16, so both steps round;
   `scale` is the mask's value already rounded to bfloat16 */
static inline float round_bf16(float f) { return bf16_to_float(float_to_bf16(f)); }

void leaky_dropout_forward_bf16(const uint16_t *restrict x, uint16_t *restrict y, int64_t n, float slope,
                                float scale, uint32_t threshold, uint64_t key) {
    LANES(n, key, threshold, scale, {
        float v = bf16_to_float(x[i]);
        y[i] = float_to_bf16(round_bf16(v * pick(v > 0, 1.0f, slope)) * m);
    });
}

void leaky_dropout_backward_bf16(const uint16_t *restrict x, const uint16_t *restrict dy, uint16_t *restrict dx,
                                 int64_t n, float slope, float scale, uint32_t threshold, uint64_t key) {
    LANES(n, key, threshold, scale,
          dx[i] = float_to_bf16(round_bf16(bf16_to_float(dy[i]) * m) * pick(bf16_to_float(x[i]) > 0, 1.0f, slope)));
}
