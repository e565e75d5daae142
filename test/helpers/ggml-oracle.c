/*
 * A tiny command-line bridge to llama.cpp's own quantizers, for tests (see ggml-oracle.ts).
 * It dlopen()s the libggml-base.so that node-llama-cpp ships and calls its public functions on rows of
 * floats read from stdin, writing the raw result to stdout.
 *
 * usage: ggml-oracle LIBDIR OP TYPE_NAME TYPE_ID N_PER_ROW N_ROWS ROW_BYTES [CPU_VARIANT]
 *   OP = quantize-chunk  ggml_quantize_chunk(type, ...) over N_ROWS rows        stdin f32, stdout ROW_BYTES per row
 *        quantize-ref    quantize_row_<name>_ref / ggml_fp32_to_{fp16,bf16}_row(_ref) per row
 *        quantize-cpu    the CPU backend's from_float (libggml-cpu-<variant>.so, ggml_get_type_traits_cpu)
 *        dequantize      dequantize_row_<name> / ggml_{fp16,bf16}_to_fp32_row      stdin bytes, stdout f32
 *        dot-cpu         the CPU backend's vec_dot of row i of TYPE with row i of its vec_dot_type partner
 *                        (stdin: N_ROWS rows of ROW_BYTES, then N_ROWS partner rows of PARTNER_BYTES = argv[9]),
 *                        stdout: N_ROWS floats
 *        describe        print "name blck_size type_size" from ggml_get_type_traits (to check this declaration)
 * exit codes: 0 ok, 2 bad arguments, 3 a symbol or library is missing, 4 short input
 */
#include <dlfcn.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The few public declarations used (from ggml.h / ggml-cpu.h, written out here). */
typedef void (*to_float_fn)(const void *src, float *dst, int64_t n);
typedef void (*from_float_fn)(const float *src, void *dst, int64_t n);
typedef void (*vec_dot_fn)(int n, float *s, size_t bs, const void *x, size_t bx, const void *y, size_t by, int nrc);
typedef size_t (*quantize_chunk_fn)(int type, const float *src, void *dst, int64_t start, int64_t nrows,
                                    int64_t n_per_row, const float *imatrix);
struct base_type_traits {
    const char *type_name;
    int64_t blck_size;
    int64_t blck_size_interleave;
    size_t type_size;
    bool is_quantized;
    to_float_fn to_float;
    from_float_fn from_float_ref;
};
typedef const struct base_type_traits *(*get_traits_fn)(int type);
struct cpu_type_traits {
    from_float_fn from_float;
    vec_dot_fn vec_dot;
    int vec_dot_type;
    int64_t nrows;
};
typedef const struct cpu_type_traits *(*get_cpu_traits_fn)(int type);

static void *need_symbol(void *lib, const char *name) {
    void *p = dlsym(lib, name);
    if (!p) {
        fprintf(stderr, "ggml-oracle: symbol %s not found\n", name);
        exit(3);
    }
    return p;
}

static void *open_library(const char *dir, const char *file) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    void *lib = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
    if (!lib) {
        fprintf(stderr, "ggml-oracle: cannot load %s: %s\n", path, dlerror());
        exit(3);
    }
    return lib;
}

static void *read_exactly(size_t bytes) {
    unsigned char *buf = malloc(bytes ? bytes : 1);
    size_t got = 0;
    while (got < bytes) {
        size_t r = fread(buf + got, 1, bytes - got, stdin);
        if (r == 0) {
            fprintf(stderr, "ggml-oracle: expected %zu input bytes, got %zu\n", bytes, got);
            exit(4);
        }
        got += r;
    }
    return buf;
}

static void write_all(const void *buf, size_t bytes) {
    if (fwrite(buf, 1, bytes, stdout) != bytes) exit(1);
}

int main(int argc, char **argv) {
    if (argc < 8) {
        fprintf(stderr, "usage: ggml-oracle LIBDIR OP TYPE_NAME TYPE_ID N_PER_ROW N_ROWS ROW_BYTES [CPU_VARIANT [PARTNER_BYTES]]\n");
        return 2;
    }
    const char *dir = argv[1], *op = argv[2], *name = argv[3];
    const int type = atoi(argv[4]);
    const int64_t n_per_row = atoll(argv[5]), n_rows = atoll(argv[6]);
    const size_t row_bytes = (size_t)atoll(argv[7]);
    const size_t n_values = (size_t)(n_per_row * n_rows);
    char symbol[256];
    void *base = open_library(dir, "libggml-base.so");

    if (strcmp(op, "describe") == 0) {
        const struct base_type_traits *t = ((get_traits_fn)need_symbol(base, "ggml_get_type_traits"))(type);
        printf("%s %lld %zu\n", t->type_name, (long long)t->blck_size, t->type_size);
        return 0;
    }
    if (strcmp(op, "quantize-chunk") == 0 || strcmp(op, "quantize-ref") == 0 || strcmp(op, "quantize-cpu") == 0) {
        float *src = read_exactly(n_values * sizeof(float));
        unsigned char *dst = calloc(row_bytes * (size_t)n_rows + 1, 1);
        if (strcmp(op, "quantize-chunk") == 0) {
            ((quantize_chunk_fn)need_symbol(base, "ggml_quantize_chunk"))(type, src, dst, 0, n_rows, n_per_row, NULL);
        } else {
            from_float_fn quantize;
            if (strcmp(op, "quantize-cpu") == 0) {
                if (argc < 9) return 2;
                snprintf(symbol, sizeof symbol, "libggml-cpu-%s.so", argv[8]);
                void *cpu = open_library(dir, symbol);
                ((void (*)(void))need_symbol(cpu, "ggml_cpu_init"))();
                quantize = ((get_cpu_traits_fn)need_symbol(cpu, "ggml_get_type_traits_cpu"))(type)->from_float;
            } else if (strcmp(name, "f16") == 0) {
                quantize = (from_float_fn)need_symbol(base, "ggml_fp32_to_fp16_row");
            } else if (strcmp(name, "bf16") == 0) {
                quantize = (from_float_fn)need_symbol(base, "ggml_fp32_to_bf16_row_ref");
            } else if (strcmp(name, "f32") == 0) {
                quantize = NULL;
            } else {
                snprintf(symbol, sizeof symbol, "quantize_row_%s_ref", name);
                quantize = (from_float_fn)need_symbol(base, symbol);
            }
            for (int64_t r = 0; r < n_rows; r++) {
                if (quantize) quantize(src + r * n_per_row, dst + r * row_bytes, n_per_row);
                else memcpy(dst + r * row_bytes, src + r * n_per_row, row_bytes);
            }
        }
        write_all(dst, row_bytes * (size_t)n_rows);
        return 0;
    }
    if (strcmp(op, "dequantize") == 0) {
        unsigned char *src = read_exactly(row_bytes * (size_t)n_rows);
        float *dst = calloc(n_values + 1, sizeof(float));
        to_float_fn dequantize;
        if (strcmp(name, "f16") == 0) dequantize = (to_float_fn)need_symbol(base, "ggml_fp16_to_fp32_row");
        else if (strcmp(name, "bf16") == 0) dequantize = (to_float_fn)need_symbol(base, "ggml_bf16_to_fp32_row");
        else if (strcmp(name, "f32") == 0) dequantize = NULL;
        else {
            snprintf(symbol, sizeof symbol, "dequantize_row_%s", name);
            dequantize = (to_float_fn)need_symbol(base, symbol);
        }
        for (int64_t r = 0; r < n_rows; r++) {
            if (dequantize) dequantize(src + r * row_bytes, dst + r * n_per_row, n_per_row);
            else memcpy(dst + r * n_per_row, src + r * row_bytes, row_bytes);
        }
        write_all(dst, n_values * sizeof(float));
        return 0;
    }
    if (strcmp(op, "dot-cpu") == 0) {
        if (argc < 10) return 2;
        const size_t partner_bytes = (size_t)atoll(argv[9]);
        snprintf(symbol, sizeof symbol, "libggml-cpu-%s.so", argv[8]);
        void *cpu = open_library(dir, symbol);
        ((void (*)(void))need_symbol(cpu, "ggml_cpu_init"))();
        vec_dot_fn dot = ((get_cpu_traits_fn)need_symbol(cpu, "ggml_get_type_traits_cpu"))(type)->vec_dot;
        unsigned char *rows = read_exactly(row_bytes * (size_t)n_rows);
        unsigned char *partners = read_exactly(partner_bytes * (size_t)n_rows);
        float *out = calloc((size_t)n_rows + 1, sizeof(float));
        for (int64_t r = 0; r < n_rows; r++) {
            dot((int)n_per_row, &out[r], 0, rows + r * row_bytes, 0, partners + r * partner_bytes, 0, 1);
        }
        write_all(out, (size_t)n_rows * sizeof(float));
        return 0;
    }
    fprintf(stderr, "ggml-oracle: unknown op '%s'; allowed: quantize-chunk, quantize-ref, quantize-cpu, dequantize, dot-cpu, describe\n", op);
    return 2;
}
