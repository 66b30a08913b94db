/* The program `verify` builds with the image's mcc and runs when a MUSA device is visible:
   the MUSA runtime's answer to "how many devices?". */
#include <stdio.h>
#include <musa_runtime.h>

int main(void) {
    int count = 0;
    musaError_t err = musaGetDeviceCount(&count);
    if (err != musaSuccess) {
        printf("musaGetDeviceCount failed: %s\n", musaGetErrorString(err));
        return 1;
    }
    printf("musa devices: %d\n", count);
    return count > 0 ? 0 : 2;
}
