/* <linux/aio_abi.h>'s types and numbers, which musl's headers do not have: for the AIO
 * test programs (aio.c, snapaio.c). */
#ifndef KT_AIO_H
#define KT_AIO_H
#include <stdint.h>

typedef unsigned long aio_context_t;
enum { IOCB_CMD_PREAD = 0, IOCB_CMD_PWRITE = 1, IOCB_CMD_FSYNC = 2, IOCB_CMD_FDSYNC = 3, IOCB_CMD_PREADV = 7,
       IOCB_CMD_PWRITEV = 8 };
#define IOCB_FLAG_RESFD 1
#define IOCB_FLAG_IOPRIO 2
struct io_event {
    uint64_t data, obj;
    int64_t res, res2;
};
struct iocb {
    uint64_t aio_data;
    uint32_t aio_key;
    int32_t aio_rw_flags;
    uint16_t aio_lio_opcode;
    int16_t aio_reqprio;
    uint32_t aio_fildes;
    uint64_t aio_buf, aio_nbytes;
    int64_t aio_offset;
    uint64_t aio_reserved2;
    uint32_t aio_flags, aio_resfd;
};
#ifndef SYS_io_pgetevents
#define SYS_io_pgetevents 333
#endif

#endif
