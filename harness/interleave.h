/* interleave.h - `alloclab interleave` (interleave.c). */
#ifndef ALLOCLAB_INTERLEAVE_H
#define ALLOCLAB_INTERLEAVE_H

/* argv: the arguments after "interleave"; commit: the build's, for the report. Returns the
 * exit status (exits 2 itself on bad input). */
int al_interleave_main(int argc, char **argv, const char *commit);

#endif
