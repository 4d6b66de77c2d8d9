package check

import (
	"context"

	"github.com/wgbird/wgbird/internal/execcheck"
	"github.com/wgbird/wgbird/internal/health"
)

// execCheck runs an operator's command (execcheck), in the background:
// a slow command never delays an evaluation.
type execCheck struct {
	run  func(context.Context, execcheck.Spec) health.Check
	spec execcheck.Spec
}

func (c execCheck) Run(ctx context.Context, _ *Pass) health.Check { return c.run(ctx, c.spec) }
