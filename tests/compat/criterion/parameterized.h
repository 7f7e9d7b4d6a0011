/* See criterion.h beside this file: the TSan build's stand-in for Criterion. */
#include "criterion.h"
