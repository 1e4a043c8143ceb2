/*
 * ipy_threadkill._native, forced cancel (_force.c): the functions it adds to
 * the module. The table is empty where a forced cancel cannot be made safe, so
 * Python sees no force_cancel and refuses.
 */
#ifndef IPY_THREADKILL_FORCE_H
#define IPY_THREADKILL_FORCE_H

#include <Python.h>

extern PyMethodDef force_methods[];

#endif  /* IPY_THREADKILL_FORCE_H */
