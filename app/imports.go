package app

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"

	"github.com/rapport/rapport/campaigns"
)

// importTimeout bounds one web import; a larger file belongs to the CLI.
const importTimeout = time.Hour

var errImportTooLong = errors.New("the import took over an hour; import a file this large with `rapport import customers`")

func (a *App) importPage(c *fiber.Ctx) error {
	recent, err := a.store.RecentImports(c.UserContext(), 10)
	if err != nil {
		return err
	}
	return a.render(c, "pages/import", fiber.Map{"Title": "Import customers", "Recent": recent})
}

// importUpload copies the upload to a file of our own (the request's
// temporary files vanish when the handler returns), records the run, and
// imports in the background while the browser follows its progress.
func (a *App) importUpload(c *fiber.Ctx) error {
	fh, err := c.FormFile("file")
	if err != nil {
		return a.redirectWith(c, "/import", "error", "Choose a CSV file to upload.")
	}
	src, err := fh.Open()
	if err != nil {
		return err
	}
	defer src.Close()
	tmp, err := os.CreateTemp("", "rapport-import-*.csv")
	if err != nil {
		return err
	}
	size, err := io.Copy(tmp, src)
	if err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	name := utils.CopyString(filepath.Base(fh.Filename))
	actor := principal(c).Name
	im, err := a.store.StartImport(c.UserContext(), "customers", name, size, actor)
	if err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if a.deps.Background != nil {
		a.deps.Background.Add(1)
	}
	go func() {
		if a.deps.Background != nil {
			defer a.deps.Background.Done()
		}
		defer os.Remove(tmp.Name())
		defer tmp.Close()
		base := a.deps.Imports
		if base == nil {
			base = context.Background()
		}
		ctx, cancel := context.WithTimeoutCause(base, importTimeout, errImportTooLong)
		defer cancel()
		res, err := a.store.ImportCustomers(ctx, tmp, campaigns.ImportOptions{
			Filename: name, Size: size, Actor: actor, ImportID: im.ID})
		if err != nil {
			a.log.Warn("import failed", "import", im.ID, "file", name, "err", err)
			return
		}
		a.log.Info("import done", "import", im.ID, "file", name, "inserted", res.Inserted,
			"updated", res.Updated, "unchanged", res.Unchanged, "rejected", res.Rejected)
	}()
	return c.Redirect("/imports/"+strconv.FormatInt(im.ID, 10), fiber.StatusSeeOther)
}

func (a *App) importStatusPage(c *fiber.Ctx) error {
	id, err := idParam(c)
	if err != nil {
		return err
	}
	im, err := a.store.GetImport(c.UserContext(), id)
	if err != nil {
		return err
	}
	problems := im.ProblemList()
	return a.render(c, "pages/import_status", fiber.Map{"Title": "Import " + im.Filename, "Import": im, "Problems": problems,
		"Unlisted": im.UnlistedRejects(problems)})
}

func (a *App) importStatusJSON(c *fiber.Ctx) error {
	id, err := idParam(c)
	if err != nil {
		return err
	}
	im, err := a.store.GetImport(c.UserContext(), id)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"import": im, "percent": im.Percent()})
}
