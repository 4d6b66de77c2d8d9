package guest

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
)

// Boot runs qemu with software emulation (no KVM) on the kernel and
// initramfs and copies the guest's console to console until the guest
// powers off or ctx ends, when qemu is killed.
func Boot(ctx context.Context, qemu string, k *Kernel, initrd string, memMB, cpus int, console io.Writer) error {
	args := []string{
		"-m", strconv.Itoa(memMB), "-smp", strconv.Itoa(cpus), "-cpu", "max",
		"-display", "none", "-monitor", "none", "-serial", "stdio", "-no-reboot",
		"-net", "none",
		"-kernel", k.Vmlinuz, "-initrd", initrd,
		"-append", "console=ttyS0 panic=-1 quiet loglevel=3",
	}
	cmd := exec.CommandContext(ctx, qemu, args...)
	cmd.Stdout, cmd.Stderr = console, console
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("qemu killed: %w", ctx.Err())
		}
		return fmt.Errorf("qemu: %w", err)
	}
	return nil
}

// WriteInitrd writes the archive to dir/initrd.gz and returns its path.
func WriteInitrd(a *Archive, dir string) (string, error) {
	p := filepath.Join(dir, "initrd.gz")
	f, err := os.Create(p)
	if err != nil {
		return "", err
	}
	if err := a.Write(f); err != nil {
		f.Close()
		return "", err
	}
	return p, f.Close()
}
