/*
 * c-host: a minimal C program on slicewise's C ABI.
 *
 *   c-host MODEL VOLUME OUT [--device auto|cpu|cuda|tensorrt] [--threads N] [--ort LIBONNXRUNTIME]
 *   c-host open FILE...
 *
 * Opens the model and the volume (DICOM folder, NIfTI, TIFF), segments with a progress bar on
 * stderr, writes the mask to OUT (.nii, .nii.gz, .tif), and prints the volume of each label in
 * millilitres on stdout. Exit status: 0 on success, 2 on bad usage, 1 on any library error.
 *
 * `open` only opens each FILE as a volume and frees it again, printing one line per file on
 * stdout: `ok FILE DIMS` or `refused FILE: STATUS: MESSAGE`. A refusal must come with a message
 * that names the file; `bad FILE: ...` (and exit status 1) when it does not. Exit status 0 when
 * every file was opened or cleanly refused: the mode is for running corrupt files through the
 * C ABI under sanitizers.
 */
#include "slicewise.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char *what, slicewise_status st) {
    size_t len = 0;
    char *msg;
    /* Ask for the size first, then read the whole message. */
    slicewise_last_error(NULL, 0, &len);
    msg = (char *)malloc(len + 1);
    if (msg != NULL && slicewise_last_error(msg, len + 1, NULL) == SLICEWISE_OK) {
        fprintf(stderr, "c-host: %s: %s (%s)\n", what, msg, slicewise_status_str(st));
    } else {
        fprintf(stderr, "c-host: %s: %s\n", what, slicewise_status_str(st));
    }
    free(msg);
    return 1;
}

/* The calling thread's last error message (malloc'd, possibly empty), or NULL. */
static char *last_error(void) {
    size_t len = 0;
    char *msg;
    if (slicewise_last_error(NULL, 0, &len) != SLICEWISE_BUFFER_TOO_SMALL && len != 0) {
        return NULL;
    }
    msg = (char *)malloc(len + 1);
    if (msg != NULL && slicewise_last_error(msg, len + 1, NULL) != SLICEWISE_OK) {
        free(msg);
        msg = NULL;
    }
    return msg;
}

/* `c-host open FILE...`: see the top of this file. */
static int open_files(int n, char **files) {
    int i, rc = 0;
    for (i = 0; i < n; i++) {
        const char *path = files[i];
        const char *base = strrchr(path, '/');
        slicewise_volume *volume = NULL;
        slicewise_status st = slicewise_volume_open(path, &volume);
        base = base != NULL && base[1] != '\0' ? base + 1 : path;
        if (st == SLICEWISE_OK) {
            slicewise_volume_desc d;
            memset(&d, 0, sizeof d);
            d.struct_size = sizeof d;
            if (volume == NULL) {
                printf("bad %s: SLICEWISE_OK without a volume\n", path);
                rc = 1;
            } else if ((st = slicewise_volume_info(volume, SLICEWISE_SPACE_LPS, &d)) !=
                       SLICEWISE_OK) {
                printf("bad %s: opened, but volume info failed: %s\n", path,
                       slicewise_status_str(st));
                rc = 1;
            } else {
                printf("ok %s %zux%zux%zux%zu\n", path, d.dims[0], d.dims[1], d.dims[2],
                       d.dims[3]);
            }
        } else {
            char *msg = last_error();
            if (volume != NULL) {
                printf("bad %s: %s with a volume\n", path, slicewise_status_str(st));
                rc = 1;
            } else if (msg == NULL || msg[0] == '\0' || strstr(msg, base) == NULL) {
                printf("bad %s: %s: message does not name the file: \"%s\"\n", path,
                       slicewise_status_str(st), msg != NULL ? msg : "(unreadable)");
                rc = 1;
            } else {
                printf("refused %s: %s: %s\n", path, slicewise_status_str(st), msg);
            }
            free(msg);
        }
        slicewise_volume_free(volume);
        fflush(stdout);
    }
    return rc;
}

static int progress(void *userdata, size_t done, size_t total) {
    const int width = 40;
    int filled = total > 0 ? (int)(done * (size_t)width / total) : width;
    int i;
    (void)userdata;
    fputs("\r[", stderr);
    for (i = 0; i < width; i++) {
        fputc(i < filled ? '#' : ' ', stderr);
    }
    fprintf(stderr, "] %zu/%zu slices", done, total);
    if (done >= total) {
        fputc('\n', stderr);
    }
    fflush(stderr);
    return 0; /* non-zero would cancel */
}

static int parse_device(const char *s, slicewise_device *out) {
    if (strcmp(s, "auto") == 0) {
        *out = SLICEWISE_DEVICE_AUTO;
    } else if (strcmp(s, "cpu") == 0) {
        *out = SLICEWISE_DEVICE_CPU;
    } else if (strcmp(s, "cuda") == 0) {
        *out = SLICEWISE_DEVICE_CUDA;
    } else if (strcmp(s, "tensorrt") == 0) {
        *out = SLICEWISE_DEVICE_TENSORRT;
    } else {
        return -1;
    }
    return 0;
}

static int usage(void) {
    fputs("usage: c-host MODEL VOLUME OUT [--device auto|cpu|cuda|tensorrt] [--threads N] "
          "[--ort LIB]\n"
          "       c-host open FILE...\n",
          stderr);
    return 2;
}

int main(int argc, char **argv) {
    const char *positional[3] = {NULL, NULL, NULL};
    const char *ort = NULL;
    int npos = 0, i, rc = 1;
    slicewise_model_options mopts;
    slicewise_model *model = NULL;
    slicewise_volume *volume = NULL;
    slicewise_mask *mask = NULL;
    slicewise_mask_desc desc;
    slicewise_status st;
    size_t l;

    if (argc >= 2 && strcmp(argv[1], "open") == 0) {
        return argc >= 3 ? open_files(argc - 2, argv + 2) : usage();
    }
    if (slicewise_model_options_init(&mopts) != SLICEWISE_OK) {
        return fail("options", SLICEWISE_PANIC);
    }
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--device") == 0 && i + 1 < argc) {
            if (parse_device(argv[++i], &mopts.device) != 0) {
                return usage();
            }
        } else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            char *end = NULL;
            unsigned long n = strtoul(argv[++i], &end, 10);
            if (end == argv[i] || *end != '\0' || n > 1024) {
                return usage();
            }
            mopts.threads = (uint32_t)n;
        } else if (strcmp(argv[i], "--ort") == 0 && i + 1 < argc) {
            ort = argv[++i];
        } else if (argv[i][0] == '-' || npos == 3) {
            return usage();
        } else {
            positional[npos++] = argv[i];
        }
    }
    if (npos != 3) {
        return usage();
    }
    {
        char header_version[32];
        snprintf(header_version, sizeof header_version, "%d.%d.%d", SLICEWISE_VERSION_MAJOR,
                 SLICEWISE_VERSION_MINOR, SLICEWISE_VERSION_PATCH);
        if (strcmp(header_version, slicewise_version()) != 0) {
            fprintf(stderr, "c-host: warning: built with slicewise.h %s, running libslicewise %s\n",
                    header_version, slicewise_version());
        }
    }

    if ((st = slicewise_runtime_init(ort)) != SLICEWISE_OK) {
        return fail("runtime init", st);
    }
    if ((st = slicewise_model_open(positional[0], &mopts, &model)) != SLICEWISE_OK) {
        fail(positional[0], st);
        goto done;
    }
    if ((st = slicewise_volume_open(positional[1], &volume)) != SLICEWISE_OK) {
        fail(positional[1], st);
        goto done;
    }
    if ((st = slicewise_segment(model, volume, NULL, progress, NULL, &mask)) != SLICEWISE_OK) {
        fail("segment", st);
        goto done;
    }
    if ((st = slicewise_mask_save(mask, positional[2])) != SLICEWISE_OK) {
        fail(positional[2], st);
        goto done;
    }
    memset(&desc, 0, sizeof desc);
    desc.struct_size = sizeof desc;
    if ((st = slicewise_mask_info(mask, SLICEWISE_SPACE_LPS, &desc)) != SLICEWISE_OK) {
        fail("mask info", st);
        goto done;
    }
    printf("mask %zux%zux%zu voxels, %.4gx%.4gx%.4g mm -> %s\n", desc.dims[0], desc.dims[1],
           desc.dims[2], desc.spacing[0], desc.spacing[1], desc.spacing[2], positional[2]);
    for (l = 0; l < desc.label_count; l++) {
        slicewise_label_stats s;
        memset(&s, 0, sizeof s);
        s.struct_size = sizeof s;
        if ((st = slicewise_mask_label_stats(mask, l, &s)) != SLICEWISE_OK) {
            fail("label stats", st);
            goto done;
        }
        printf("label %u %s: %llu voxels, %.3f mL\n", (unsigned)s.value,
               s.name[0] != '\0' ? s.name : "(unnamed)", (unsigned long long)s.voxels, s.ml);
    }
    rc = 0;
done:
    slicewise_mask_free(mask);
    slicewise_volume_free(volume);
    slicewise_model_free(model);
    return rc;
}
