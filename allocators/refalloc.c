/* refalloc.c - ref_load(): dlopen a reference allocator without letting it replace the
 * process's malloc. See refalloc.h. */
#include "refalloc.h"

#include <dlfcn.h>
#include <stdio.h>

#if defined(__SANITIZE_THREAD__)
char ref_tsan_sync;
#endif

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define REF_LSAN_DISABLE() __lsan_disable()
#define REF_LSAN_ENABLE() __lsan_enable()
#else
#define REF_LSAN_DISABLE() ((void)0)
#define REF_LSAN_ENABLE() ((void)0)
#endif

int ref_load(const char *soname, const ref_sym *syms, int nsyms, char *err, size_t errlen)
{
    /* RTLD_LOCAL: the library's own malloc/free/... definitions stay out of the global scope,
     * so neither the program nor any later-loaded library binds to them. */
    /* The library's static constructors may allocate through the process's malloc for good
     * (tcmalloc registers its MallocExtension with operator new): not our leak. */
    REF_LSAN_DISABLE();
    void *h = dlopen(soname, RTLD_LOCAL | RTLD_NOW);
    REF_LSAN_ENABLE();
    if (!h) {
        snprintf(err, errlen, "not installed: %s", soname);
        return -1;
    }
    void *found[64] = {0};
    if (nsyms > 64) nsyms = 64;
    for (int i = 0; i < nsyms; i++) {
        found[i] = dlsym(h, syms[i].name);
        if (!found[i] && !syms[i].optional) {
            snprintf(err, errlen, "%s: symbol %s missing", soname, syms[i].name);
            dlclose(h);
            return -1;
        }
    }
    for (int i = 0; i < nsyms; i++) *syms[i].slot = found[i];
    return 0; /* never dlclose'd: blocks may outlive every heap handle */
}
